"""95% confidence intervals of summary figures: Wilson's score interval for a share of independent yes/no outcomes
and Newcombe's for the difference of two shares, the percentile bootstrap (of the mean, or of any statistic through
`resample_indices`), Student's t interval of a mean over a few independent replicates (training seeds) and its
stratified form for an average of such means, Welch's t-interval for a ratio of geometric means over a few seeds,
and an exact permutation test of a monotone trend."""

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


def resample_indices(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> np.ndarray:
    """resamples × n indices into n samples, drawn with replacement from a generator seeded `seed` (reproducible)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def percentile_interval(statistics, level: float = 0.95) -> tuple[float, float]:
    """The central `level` share of a statistic's bootstrap distribution (Efron & Tibshirani 1993, ch. 13)."""
    low, high = np.quantile(np.asarray(statistics, dtype=np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_mean_interval(values, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean: the samples are redrawn with replacement `resamples` times
    (`resample_indices`); (NaN, NaN) for no values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    return percentile_interval(values[resample_indices(values.size, resamples, seed)].mean(axis=1), level)


def t_quantile(probability: float, dof: float) -> float:
    """Student's t quantile; scipy is imported here, not at module level, because it takes most of a second and
    the report CLIs that import this module must print --help quickly."""
    from scipy.stats import t

    return float(t.ppf(probability, dof))


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Student's t interval of the mean of independent, roughly normal values: mean ± t(n−1) · s / √n. With a few
    replicates (training seeds) the t quantile, not 1.96, is what keeps the coverage (12.7 for 2 values, 4.3 for
    3); (NaN, NaN) for fewer than 2 values."""
    values = np.asarray(values, dtype=np.float64)
    if values.size < 2:
        return math.nan, math.nan
    half = t_quantile((1 + level) / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
    return float(values.mean() - half), float(values.mean() + half)


def stratified_t_interval(groups, level: float = 0.95) -> tuple[float, float]:
    """t interval of the average over K groups of each group's mean (e.g. datasets, each with its seeds): the groups
    are fixed, only the replicates within them vary, so var = Σ s_g²/n_g / K², with Welch–Satterthwaite degrees of
    freedom (Σ v_g)² / Σ v_g²/(n_g − 1), v_g = s_g²/n_g. One group is `t_interval`. (NaN, NaN) when a group has fewer
    than 2 values; a zero variance gives the point."""
    groups = [np.asarray(group, dtype=np.float64) for group in groups]
    if not groups or min(group.size for group in groups) < 2:
        return math.nan, math.nan
    centre = float(np.mean([group.mean() for group in groups]))
    shares = np.array([group.var(ddof=1) / group.size for group in groups])
    if shares.sum() == 0:
        return centre, centre
    dof = shares.sum() ** 2 / sum(share ** 2 / (group.size - 1) for share, group in zip(shares, groups))
    half = t_quantile((1 + level) / 2, dof) * math.sqrt(shares.sum()) / len(groups)
    return centre - half, centre + half


def pooled_successes(rates, samples) -> tuple[int, int]:
    """Successes and samples of shares measured on several groups (e.g. motif problems) pooled into one: the counts
    are rate × samples, rounded back to whole outcomes."""
    rates, samples = np.asarray(rates, dtype=np.float64), np.asarray(samples, dtype=np.float64)
    return int(np.round(rates * samples).sum()), int(samples.sum())


def newcombe_difference_interval(successes_1: int, n_1: int, successes_2: int, n_2: int,
                                 z: float = Z95) -> tuple[float, float]:
    """Interval of the difference of two independent shares p1 − p2 from their Wilson intervals (Newcombe 1998,
    method 10, the hybrid score interval); (NaN, NaN) when either n is 0."""
    if n_1 == 0 or n_2 == 0:
        return math.nan, math.nan
    p_1, p_2 = successes_1 / n_1, successes_2 / n_2
    (low_1, high_1), (low_2, high_2) = wilson_interval(successes_1, n_1, z), wilson_interval(successes_2, n_2, z)
    difference = p_1 - p_2
    return (difference - math.hypot(p_1 - low_1, high_2 - p_2), difference + math.hypot(high_1 - p_1, p_2 - low_2))


def spearman_trend(x, y) -> tuple[float, float, float]:
    """Spearman's rank correlation of y with x and its exact one-sided permutation p-values (increasing,
    decreasing): the share of the n! orderings of y whose correlation is at least (at most) the observed one. Exact,
    so only for n ≤ 8 (40320 orderings); ties get average ranks."""
    from itertools import permutations

    from scipy.stats import rankdata

    x_ranks, y_ranks = rankdata(x), rankdata(y)
    if len(x_ranks) > 8:
        raise ValueError(f"the exact permutation test enumerates n! orderings; n = {len(x_ranks)} is above 8")

    def rho(ranks) -> float:
        """Pearson correlation of the ranks."""
        return float(np.corrcoef(x_ranks, ranks)[0, 1])

    observed = rho(y_ranks)
    null = np.array([rho(np.array(order)) for order in permutations(y_ranks)])
    tolerance = 1e-12  # equal correlations of different orderings differ only by rounding
    return observed, float(np.mean(null >= observed - tolerance)), float(np.mean(null <= observed + tolerance))


def geometric_mean_ratio(groups, level: float = 0.95) -> tuple[float, float, float]:
    """How many times larger baseline values are than method values, and its t-interval: `groups` is a list of
    (baseline values, method values) of positive numbers (e.g. one pair per condition, one value per seed). The
    estimate is exp of the mean over the pairs of mean(log baseline) − mean(log method) (with one pair, the ratio of
    the geometric means); the interval is Welch's on that log ratio (each group's sample variance, Welch–Satterthwaite
    degrees of freedom; Welch 1947), exponentiated. (ratio, NaN, NaN) when a group has a single value; a zero spread
    gives the point."""

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
    half = t_quantile((1 + level) / 2, dof) * math.sqrt(total) / len(differences)
    return ratio, math.exp(estimate - half), math.exp(estimate + half)
