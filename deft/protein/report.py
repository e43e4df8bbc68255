"""DEFT Fig. 5 as tables: motif-scaffolding success per problem × method with the problems each method solves, and
the per-method means of success, motif RMSD, chain geometry, secondary structure, size, diversity and cost.

    python -m deft.protein.report table --layout protein --results results/mini/protein_motif.csv \\
        --out-dir results/mini/tables [--methods unconditional,dps,deft-4]
    python -m deft.protein.report table --layout protein_quality --results results/mini/protein_motif.csv \\
        --out-dir results/mini/tables
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.intervals import interval_note, pooled_successes, wilson_interval
from benchmarks.report_cli import add_table_command, report_parser, run_table_command
from benchmarks.results import ResultsError
from benchmarks.tables import (
    Cell,
    Column,
    Table,
    interval_caption,
    intervals_apart,
    mark_best,
    mark_best_separated,
    ordered,
    protocol_caption,
    protocol_values,
    select,
    summarise,
)
from tunebench.cli import run_cli

PROTEIN_QUALITY_COLUMNS = (
    Column("success_rate", "Success %↑", +1, 1, 100.0, show_std=False, show_interval=True),
    Column("motif_placed_rate", "Motif < 1 Å %↑", +1, 1, 100.0, show_std=False, show_interval=True),
    Column("motif_rmsd_median", "Motif RMSD (Å)↓", -1, 2, show_std=False),
    Column("bond_valid", "Valid bonds %↑", +1, 1, 100.0, show_std=False),
    Column("clash_free", "Clash-free %↑", +1, 1, 100.0, show_std=False, show_interval=True),
    Column("helix", "Helix %", 0, 0, 100.0, show_std=False), Column("strand", "Strand %", 0, 0, 100.0, show_std=False),
    Column("radius_of_gyration", "Rg (Å)", 0, 1, show_std=False),
    Column("tm_diversity", "Pairwise TM↓", -1, 2, show_std=False),
    Column("parameters", "Params", 0, 0, show_std=False), Column("train_seconds", "Train (s)", 0, 0, show_std=False),
    Column("seconds_per_sample", "s/sample", 0, 3, show_std=False),
    Column("prior_nfe", "Prior NFE", 0, 0, show_std=False), Column("prior_vjps", "VJPs", 0, 0, show_std=False))


def _problem_order(rows: pd.DataFrame) -> list[str]:
    """Problems (the dataset column) in name order (P01-helix, P02-strand, …)."""
    return sorted(set(rows["dataset"]))


def protein_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """DEFT Fig. 5 as a table: success rate per motif problem × method with its Wilson interval, ✓ where solved
    (≥ 1 success), and the number of problems each method solves (the paper's headline: DEFT 10/12, DPS 5/12). A
    row's best rate is bold only where its interval overlaps no other method's."""
    rows = select(rows, ["success_rate", "solved"], methods)
    if rows.empty:
        raise ResultsError(f"no success_rate rows for {name} (methods {methods or 'all'})")
    methods = [m for m in (methods or ordered(rows["method"])) if m in set(rows["method"])]
    table = Table(name, ["Problem", *methods], rows=[], label_columns=1, caption="")
    rate = Column("success_rate", "", +1, 0, 100.0, show_std=False, show_interval=True, unit="%")
    solved_counts = {m: 0 for m in methods}
    problems = _problem_order(rows)
    for problem in problems:
        cells, rates = [], []
        for method in methods:
            chosen = rows[(rows["dataset"] == problem) & (rows["method"] == method)]
            rates.append(chosen[chosen["metric"] == "success_rate"])
            cell = summarise(rates[-1], rate, table)
            solved = chosen.loc[chosen["metric"] == "solved", "value"]
            if len(solved) and float(solved.iloc[0]) > 0:
                solved_counts[method] += 1
                cell.text += " ✓"
            cells.append(cell)
        mark_best_separated(cells, rate, lambda i, j, rates=rates: intervals_apart(rates[i], rates[j]))
        table.rows.append([Cell(problem), *cells])
    totals = [Cell(f"{solved_counts[m]}/{len(problems)}", solved_counts[m]) for m in methods]
    mark_best(totals, Column("solved", "", +1, 0))
    table.group_starts.append(len(table.rows))
    table.rows.append([Cell("Solved"), *totals])
    samples = protocol_values(rows, "n_samples")
    table.caption = (f"Motif scaffolding: share of the {'/'.join(samples)} samples per problem that succeed; "
                     f"{interval_caption(rows)}✓ = solved (at least one success, the paper's convention); last row: "
                     "problems solved; bold: the best of a problem row where its interval overlaps no other "
                     f"method's, and the most problems solved. {protocol_caption(rows)}")
    return table


def pooled_rates(rows: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """A method's rows of each of `metrics` (shares of a problem's samples) pooled over the problems: the share of
    all their samples (the counts are rate × n_samples) with its Wilson interval, as one row per metric (metric,
    value, ci_low, ci_high, note)."""
    pooled = []
    for metric, group in rows[rows["metric"].isin(metrics) & rows["value"].notna()].groupby("metric"):
        successes, samples = pooled_successes(group["value"], group["n_samples"])
        low, high = wilson_interval(successes, samples)
        pooled.append({"metric": metric, "value": successes / samples, "ci_low": low, "ci_high": high,
                       "note": interval_note(f"Wilson score interval over the {samples} samples of all problems")})
    return pd.DataFrame(pooled, columns=["metric", "value", "ci_low", "ci_high", "note"])


def protein_quality_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """Per method, the mean over problems of success, motif RMSD, chain geometry, secondary structure, size,
    diversity and cost (one row per method); the rates pooled over all samples with their Wilson intervals, bold
    only where the intervals do not overlap."""
    rows = select(rows, [c.metric for c in PROTEIN_QUALITY_COLUMNS] + ["radius_of_gyration_native"], methods)
    if rows.empty:
        raise ResultsError(f"no protein quality rows for {name} (methods {methods or 'all'})")
    methods = [m for m in (methods or ordered(rows["method"])) if m in set(rows["method"])]
    table = Table(f"{name}_quality", ["Method", *[c.label for c in PROTEIN_QUALITY_COLUMNS]], rows=[],
                  label_columns=1, caption="")
    summaries = []
    for method in methods:
        method_rows = rows[rows["method"] == method]
        means = method_rows.groupby("metric")["value"].mean().reset_index().assign(note="", ci_low=np.nan,
                                                                                   ci_high=np.nan)
        pooled = pooled_rates(method_rows, [c.metric for c in PROTEIN_QUALITY_COLUMNS if c.show_interval])
        summaries.append(pd.concat([means[~means["metric"].isin(pooled["metric"])], pooled], ignore_index=True))
        table.rows.append([Cell(method), *[summarise(summaries[-1][summaries[-1]["metric"] == c.metric], c, table)
                                           for c in PROTEIN_QUALITY_COLUMNS]])
    for index, column in enumerate(PROTEIN_QUALITY_COLUMNS, start=1):
        cells = [row[index] for row in table.rows]
        if column.show_interval:
            chosen = [summary[summary["metric"] == column.metric] for summary in summaries]
            mark_best_separated(cells, column, lambda i, j, chosen=chosen: intervals_apart(chosen[i], chosen[j]))
        else:
            mark_best(cells, column)
    native = rows.loc[rows["metric"] == "radius_of_gyration_native", "value"].mean()
    table.caption = (f"Motif scaffolding, means over the {len(_problem_order(rows))} problems: success rate, share of "
                     "samples with the motif placed (its half of the criterion alone), median Kabsch motif RMSD, "
                     "Cα–Cα bonds within tolerance, samples without Cα clashes, P-SEA helix and "
                     f"strand content, radius of gyration (native windows: {native:.1f} Å), mean pairwise TM-score "
                     "of the first 20 samples (lower = more diverse), trained parameters (DEFT heads: only the head), "
                     "training and sampling wall time, prior evaluations and VJPs through it per sample. The three "
                     "shares of samples (success, motif placed, clash-free) are pooled over all problems' samples; "
                     f"{interval_caption(pd.concat(summaries))}Bold: the best, for those shares only where its "
                     f"interval overlaps no other method's. {protocol_caption(rows)}")
    return table


LAYOUTS = {"protein": (protein_table, "motif success per problem × method"),
           "protein_quality": (protein_quality_table, "per-method means")}


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, read the results and write the tables."""
    parser, commands = report_parser("python -m deft.protein.report", __doc__)
    add_table_command(commands, {name: shows for name, (_, shows) in LAYOUTS.items()})
    args = parser.parse_args(argv)
    run_table_command(args, LAYOUTS[args.layout][0])


if __name__ == "__main__":
    run_cli(main)
