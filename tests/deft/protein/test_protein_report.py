"""The protein tables from hand-made rows: success rates with their Wilson intervals, bold only where the intervals
do not overlap, and the rates pooled over problems in the quality table."""

import pandas as pd
import pytest

from benchmarks.intervals import interval_note, wilson_interval
from benchmarks.results import RESULT_COLUMNS
from deft.protein.report import protein_quality_table, protein_table
from deft.protein.scoring import rate_interval


def rows(counts: dict[tuple[str, str], int], n: int = 100) -> pd.DataFrame:
    """success_rate, motif_placed_rate, clash_free (the same count) and solved rows of (method, problem) → successes
    of n samples, with their Wilson intervals as deft.protein.scoring writes them."""
    records = []
    for (method, problem), successes in counts.items():
        for metric in ("success_rate", "motif_placed_rate", "clash_free", "solved"):
            value = float(successes > 0) if metric == "solved" else successes / n
            interval = {} if metric == "solved" else rate_interval(value, n)
            records.append({**dict.fromkeys(RESULT_COLUMNS, ""), "experiment": "protein_motif", "method": method,
                            "dataset": problem, "metric": metric, "value": value, "ci_low": float("nan"),
                            "ci_high": float("nan"), "seed": 0, "n_samples": n, **interval})
    return pd.DataFrame(records)


def test_rate_interval_is_wilsons_of_the_count():
    """12 of 100: Wilson centre (0.12 + z²/200) / (1 + z²/100) = 0.1341, half-width 0.0641 → [0.0700, 0.1981]."""
    interval = rate_interval(0.12, 100)
    assert (interval["ci_low"], interval["ci_high"]) == pytest.approx((0.0700, 0.1981), abs=1e-4)
    assert interval["note"] == interval_note("Wilson score interval over the 100 samples of the problem")


def test_success_cells_show_the_interval_and_bold_only_apart():
    """P01: DEFT 12/100 [7, 20] against DPS 0/100 [0, 4]: apart, bold. P02: 5/100 [2, 11] against 2/100 [1, 7]: the
    intervals overlap, so the better rate is not bold."""
    table = protein_table(rows({("dps", "P01"): 0, ("deft-9", "P01"): 12, ("dps", "P02"): 2, ("deft-9", "P02"): 5}),
                          "protein_motif", ["dps", "deft-9"])
    texts = [[(cell.text, cell.bold) for cell in row] for row in table.rows]
    assert texts[0] == [("P01", False), ("0% [0, 4]", False), ("12% [7, 20] ✓", True)]
    assert texts[1] == [("P02", False), ("2% [1, 7] ✓", False), ("5% [2, 11] ✓", False)]
    assert texts[2] == [("Solved", False), ("1/2", False), ("2/2", True)]
    assert "[low, high]: 95% intervals, Wilson score interval over the 100 samples of the problem." in table.caption
    assert not table.footnotes  # the interval is in the cell and the caption, not a footnote on every cell


def test_quality_table_pools_the_rates_over_problems():
    """DEFT: 12 + 8 successes of 200 samples = 10.0%, with Wilson's interval of 20 of 200."""
    table = protein_quality_table(rows({("dps", "P01"): 0, ("deft-9", "P01"): 12, ("dps", "P02"): 0,
                                        ("deft-9", "P02"): 8}), "protein_motif", ["dps", "deft-9"])
    low, high = wilson_interval(20, 200)
    deft = table.rows[1]
    assert deft[1].text == f"10.0 [{100 * low:.1f}, {100 * high:.1f}]" and deft[1].bold
    assert table.rows[0][1].text == "0.0 [0.0, 1.9]" and not table.rows[0][1].bold
    assert "Wilson score interval over the 200 samples of all problems" in table.caption
