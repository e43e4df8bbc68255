"""Wilson, bootstrap and Welch ratio intervals against known values."""

import math

import numpy as np
import pytest
from scipy import stats

from benchmarks.intervals import bootstrap_mean_interval, geometric_mean_ratio, wilson_interval


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
