"""Total times relative to DEFT's: as measured, and at the paper's count with the sampling time scaled by the number
of images and the training time kept."""

import pandas as pd
import pytest

from benchmarks.total_time import PAPER_TIME_IMAGES, ratios_to_deft, totals


def rows(records):
    """Results rows (dataset, method, metric, value, n_samples) from (task, method, metric, value, n) tuples."""
    return pd.DataFrame([{"dataset": t, "method": m, "metric": k, "value": v, "n_samples": n}
                         for t, m, k, v, n in records])


RUNS = rows([("sr4", "deft", "time_train_s", 300.0, 100), ("sr4", "deft", "time_sample_s", 50.0, 100),
             ("sr4", "deft", "time_total_s", 350.0, 100), ("sr4", "dps", "time_sample_s", 370.0, 100),
             ("sr4", "dps", "time_total_s", 370.0, 100), ("sr4", "reddiff", "time_sample_s", 17.0, 10),
             ("sr4", "reddiff", "time_total_s", 17.0, 10), ("hdr", "dps", "time_total_s", 1.0, 100)])


def test_totals_as_measured_and_at_a_count():
    assert totals(RUNS)[("sr4", "deft")] == 350.0
    at_paper = totals(RUNS, PAPER_TIME_IMAGES)
    assert at_paper[("sr4", "deft")] == pytest.approx(300 + 50 * 10)  # training once, sampling ×10
    assert at_paper[("sr4", "dps")] == pytest.approx(3700)
    assert at_paper[("sr4", "reddiff")] == pytest.approx(1700)  # its own 10 images scaled by 100


def test_ratios_skip_tasks_without_deft_and_the_reference_itself():
    assert ratios_to_deft(RUNS) == pytest.approx({("sr4", "dps"): 370 / 350, ("sr4", "reddiff"): 17 / 350})
    assert ratios_to_deft(RUNS, 1000, against=("dps",)) == pytest.approx({("sr4", "dps"): 3700 / 800})


def test_seeds_are_averaged():
    two_seeds = pd.concat([RUNS, rows([("sr4", "dps", "time_total_s", 330.0, 100)])])
    assert ratios_to_deft(two_seeds, against=("dps",))[("sr4", "dps")] == pytest.approx(350 / 350)
