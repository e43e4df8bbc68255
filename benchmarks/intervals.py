"""95% confidence intervals of summary figures: Wilson's score interval for a share of independent yes/no outcomes,
and the percentile bootstrap for the mean of independent per-sample values."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
BOOTSTRAP_RESAMPLES = 2000
# How a results row's `note` introduces the description of its interval (docs/results.md); a table that prints the
# interval in the cell finds the description by it and states it once instead of in a footnote on every cell.
INTERVAL_NOTE = "95% interval: "


def interval_note(how: str) -> str:
    """The part of a row's `note` that says how its 95% interval was made."""
    return INTERVAL_NOTE + how


def bootstrap_note(what: str, n: int, units: str) -> str:
    """`interval_note` of `bootstrap_mean_interval` (default resamples, seed 0) of `what` over `n` `units`."""
    return interval_note(f"percentile bootstrap of {what} over the {n} {units} ({BOOTSTRAP_RESAMPLES} resamples, "
                         "seed 0)")


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of the share successes/n (Brown, Cai & DasGupta 2001 recommend it over the normal
    approximation, which collapses to a point at 0 and 1); (NaN, NaN) for n = 0."""
    if n == 0:
        return math.nan, math.nan
    share, z2 = successes / n, z * z
    denominator = 1 + z2 / n
    centre = (share + z2 / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / denominator
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave it a hair inside, above the share.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def bootstrap_mean_interval(values, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (Efron & Tibshirani 1993, ch. 13): the samples are redrawn with
    replacement `resamples` times from a generator seeded `seed`, so the interval is reproducible; (NaN, NaN) for no
    values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    draws = np.random.default_rng(seed).integers(0, values.size, size=(resamples, values.size))
    means = values[draws].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
