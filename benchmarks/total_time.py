"""Total time of a reconstruction method, its training included, relative to DEFT's: as measured on the test images
of a run, and at the paper's count.

DEFT's speed claim ("up to 1.6× faster", Denker et al., NeurIPS 2024, abstract and the Table 1 caption) counts the
h-transform's training plus sampling 1000 images. A run scores fewer test images at mini scale, so the total at the
paper's count is the measured training time plus the measured sampling time scaled to 1000 images: sampling cost
grows with the number of images (fixed-size batches), training does not.
"""

from __future__ import annotations

import math

import pandas as pd

PAPER_TIME_IMAGES = 1000  # the image count of DEFT's total-time comparison
TIME_BASELINES = ("dps", "reddiff")  # the baselines the claim names (DPS and RED-diff, 1000 steps each)


def totals(rows: pd.DataFrame, images: int | None = None) -> pd.Series:
    """Total seconds per (dataset, method), the mean over seeds: `time_total_s` as measured when `images` is None,
    else `time_train_s` (0 for a method without training) + `time_sample_s` × images / the run's `n_samples`."""
    by_metric = rows[rows["metric"].isin(["time_total_s", "time_train_s", "time_sample_s"])]
    means = by_metric.groupby(["dataset", "method", "metric"])["value"].mean().unstack("metric")
    if images is None:
        return means["time_total_s"].dropna() if "time_total_s" in means else pd.Series(dtype=float)
    if "time_sample_s" not in means:
        return pd.Series(dtype=float)
    counts = by_metric[by_metric["metric"] == "time_sample_s"].groupby(["dataset", "method"])["n_samples"].first()
    train = means["time_train_s"].fillna(0.0) if "time_train_s" in means else 0.0
    return (train + means["time_sample_s"] * images / counts.astype(float)).dropna()


def ratios_to_deft(rows: pd.DataFrame, images: int | None = None, reference: str = "deft",
                   against: tuple[str, ...] | None = None) -> dict[tuple[str, str], float]:
    """{(task, method): method's total / `reference`'s total on the task} for the methods `against` (default: every
    method but the reference), at `images` test images (None: as measured), for tasks where both totals exist."""
    total = totals(rows, images)
    ratios = {}
    for (task, method), seconds in total.items():
        if method == reference or (against is not None and method not in against):
            continue
        deft = total.get((task, reference), math.nan)
        if deft > 0 and not math.isnan(seconds):
            ratios[(task, method)] = float(seconds / deft)
    return ratios
