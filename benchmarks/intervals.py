"""95% confidence intervals of summary figures: Wilson's score interval for a share of independent yes/no outcomes,
the percentile bootstrap for the mean of independent per-sample values, and Welch's t-interval for a ratio of
geometric means over a few seeds."""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
BOOTSTRAP_RESAMPLES = 2000


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


def geometric_mean_ratio(groups, level: float = 0.95) -> tuple[float, float, float]:
    """How many times larger baseline values are than method values, and its t-interval: `groups` is a list of
    (baseline values, method values) of positive numbers (e.g. one pair per condition, one value per seed). The
    estimate is exp of the mean over the pairs of mean(log baseline) − mean(log method) (with one pair, the ratio of
    the geometric means); the interval is Welch's on that log ratio (each group's sample variance, Welch–Satterthwaite
    degrees of freedom; Welch 1947), exponentiated. (ratio, NaN, NaN) when a group has a single value; a zero spread
    gives the point."""
    from scipy import stats  # here: the other intervals, imported by CLIs before --help, need no scipy

    differences, components = [], []  # components: (variance of a group's mean log, its degrees of freedom)
    for baseline, method in groups:
        parts = [np.asarray(values, dtype=np.float64) for values in (baseline, method)]
        if any(part.size == 0 or not (part > 0).all() for part in parts):
            raise ValueError(f"need positive values in every group, got {baseline} and {method}")
        logs = [np.log(part) for part in parts]
        differences.append(logs[0].mean() - logs[1].mean())
        components += [(part.var(ddof=1) / part.size if part.size > 1 else math.nan, part.size - 1) for part in logs]
    estimate = float(np.mean(differences))
    ratio = math.exp(estimate)
    if any(dof == 0 for _, dof in components):
        return ratio, math.nan, math.nan
    total = sum(variance for variance, _ in components)  # the 1/pairs² of the mean's variance cancels in the dof
    if total == 0:
        return ratio, ratio, ratio
    dof = total ** 2 / sum(variance ** 2 / df for variance, df in components if variance > 0)
    half = stats.t.ppf((1 + level) / 2, dof) * math.sqrt(total) / len(differences)
    return ratio, math.exp(estimate - half), math.exp(estimate + half)
