"""Wilson, bootstrap and Welch ratio intervals against known values."""

import math

import numpy as np
import pytest
from scipy import stats

from benchmarks.intervals import (
    bootstrap_mean_interval,
    geometric_mean_ratio,
    percentile_interval,
    resample_indices,
    stratified_t_interval,
    t_interval,
    wilson_interval,
)


def test_wilson_interval_by_hand_and_at_the_edges():
    # 8 of 10, z = 1.96: centre (0.8 + z²/20) / (1 + z²/10) = 0.7167, half-width z·√(0.016 + z²/400) / 1.384 = 0.2266.
    low, high = wilson_interval(8, 10)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 20)[0] == 0.0 and 0 < wilson_interval(0, 20)[1] < 0.2
    assert wilson_interval(0, 200)[0] == 0.0 and wilson_interval(200, 200)[1] == 1.0  # exact, not rounded inside
    assert wilson_interval(20, 20)[1] == 1.0 and 0.8 < wilson_interval(20, 20)[0] < 1
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_bootstrap_mean_interval_is_reproducible_and_brackets_the_mean():
    values = np.random.default_rng(1).normal(5.0, 2.0, 200)
    low, high = bootstrap_mean_interval(values)
    assert low < values.mean() < high
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))  # the normal-theory width
    assert high - low == pytest.approx(2 * half, rel=0.15)
    assert bootstrap_mean_interval(values) == (low, high)
    assert bootstrap_mean_interval(np.ones(7)) == (1.0, 1.0)
    assert all(math.isnan(v) for v in bootstrap_mean_interval([]))


def test_percentile_interval_and_resample_indices():
    assert percentile_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))  # linear interpolation of quantiles
    draws = resample_indices(5, resamples=4, seed=0)
    assert draws.shape == (4, 5) and draws.min() >= 0 and draws.max() < 5
    assert np.array_equal(draws, resample_indices(5, resamples=4, seed=0))


def test_t_interval_by_hand():
    # [1, 2, 3]: mean 2, s = 1, t(0.975; 2 df) = 4.302653 → 2 ± 4.302653 / √3 = 2 ± 2.484138.
    assert t_interval([1.0, 2.0, 3.0]) == pytest.approx((-0.484138, 4.484138), abs=1e-6)
    # [10, 14]: mean 12, s = 2√2, t(0.975; 1 df) = 12.706205 → 12 ± 12.706205 · 2 = 12 ± 25.41241.
    assert t_interval([10.0, 14.0]) == pytest.approx((-13.41241, 37.41241), abs=1e-5)
    assert t_interval([5.0, 5.0, 5.0]) == (5.0, 5.0)
    assert all(math.isnan(v) for v in t_interval([1.0]))


def test_stratified_t_interval_by_hand():
    # Groups [1, 2, 3] and [4, 6]: means 2 and 5, centre 3.5. v = s²/n: 1/3 and 2/2 = 1, sum 4/3, so the average's
    # standard error is √(4/3) / 2 = 0.577350. Welch–Satterthwaite: (4/3)² / ((1/3)²/2 + 1²/1) = 32/19 = 1.684211 df,
    # t(0.975; 32/19) = 5.176232 → 3.5 ± 2.988499.
    low, high = stratified_t_interval([[1.0, 2.0, 3.0], [4.0, 6.0]])
    assert (low, high) == pytest.approx((0.511501, 6.488499), abs=1e-5)
    assert stratified_t_interval([[1.0, 2.0, 3.0]]) == pytest.approx(t_interval([1.0, 2.0, 3.0]))  # one group
    assert stratified_t_interval([[2.0, 2.0], [4.0, 4.0]]) == (3.0, 3.0)
    assert all(math.isnan(v) for v in stratified_t_interval([[1.0, 2.0], [3.0]]))
    assert all(math.isnan(v) for v in stratified_t_interval([]))


def test_geometric_mean_ratio_is_welchs_interval_on_the_log_ratio():
    baseline, method = [200.0, 250.0, 300.0], [100.0, 150.0, 250.0]
    ratio, low, high = geometric_mean_ratio([(baseline, method)])
    assert ratio == pytest.approx(math.exp(np.log(baseline).mean() - np.log(method).mean()))
    welch = stats.ttest_ind(np.log(baseline), np.log(method), equal_var=False).confidence_interval(0.95)
    assert (low, high) == pytest.approx((math.exp(welch.low), math.exp(welch.high)))
    assert geometric_mean_ratio([([200, 200], [100, 100])]) == pytest.approx((2.0, 2.0, 2.0))  # no spread: the point
    one = geometric_mean_ratio([([200], [100, 150])])
    assert one[0] == pytest.approx(200 / math.sqrt(100 * 150)) and math.isnan(one[1]) and math.isnan(one[2])
    with pytest.raises(ValueError, match="positive"):
        geometric_mean_ratio([([200, 0], [100, 100])])


def test_geometric_mean_ratio_over_several_pairs_averages_their_log_ratios():
    pairs = [([200.0, 300.0], [100.0, 100.0]), ([100.0, 100.0], [100.0, 200.0])]
    ratio, low, high = geometric_mean_ratio(pairs)
    assert ratio == pytest.approx(math.exp(np.mean([np.log(a).mean() - np.log(b).mean() for a, b in pairs])))
    assert low < ratio < high
    pair = ([200.0, 300.0, 250.0], [100.0, 120.0, 100.0])
    one, two = geometric_mean_ratio([pair]), geometric_mean_ratio([pair, pair])
    assert two[0] == pytest.approx(one[0]) and two[2] - two[1] < one[2] - one[1]  # a second pair narrows it


def test_pooled_successes_counts_each_groups_outcomes():
    from benchmarks.intervals import pooled_successes

    assert pooled_successes([0.12, 0.0, 0.5], [100, 50, 4]) == (12 + 0 + 2, 154)
    assert pooled_successes([1 / 3], [3]) == (1, 3)  # a rate written with rounding still counts whole outcomes
