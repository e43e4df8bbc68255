"""FID's interval over the generated images: the eigenvalue route equals torch-fidelity's FID, and the grouped
jackknife gives an interval centred on the value whose width follows the spread of FID over independent draws
(where the percentile bootstrap sits above the value, docs/fid.md)."""

import numpy as np
import pytest

from benchmarks.fid_interval import fid_jackknife_interval, fid_to_reference, symmetric_sqrt
from benchmarks.fidelity import Reference, fid_from_statistics


def test_the_eigenvalue_route_is_torch_fidelitys_fid():
    # By hand: the square (±1, ±1) against itself scaled by 2 and moved by (3, 4) is 25 + 8/3 (tests/benchmarks/
    # test_fid.py); here the reference is the scaled square's statistics.
    square = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    moved = square * 2 + np.array([3.0, 4.0])
    assert fid_to_reference(square, moved.mean(axis=0), np.cov(moved, rowvar=False)) == pytest.approx(25 + 8 / 3)
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(16, 16))
    generated, real = rng.normal(size=(300, 16)) @ mixing + 0.2, rng.normal(size=(900, 16)) @ mixing
    ref = Reference(real.mean(axis=0), np.cov(real, rowvar=False), real, {})
    expected = fid_from_statistics(Reference(generated.mean(axis=0), np.cov(generated, rowvar=False), generated, {}),
                                   ref)
    assert fid_to_reference(generated, ref.mu, ref.sigma) == pytest.approx(expected, rel=1e-9)


def test_symmetric_sqrt_squares_back_and_clips_round_off():
    a = np.random.default_rng(1).normal(size=(5, 5))
    spd = a @ a.T
    root = symmetric_sqrt(spd)
    np.testing.assert_allclose(root @ root, spd, atol=1e-10)
    np.testing.assert_allclose(symmetric_sqrt(np.diag([4.0, -1e-12])), np.diag([2.0, 0.0]))


def test_jackknife_interval_is_centred_and_as_wide_as_the_spread_over_draws():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(20000, 8))
    mu, sigma = real.mean(axis=0), np.cov(real, rowvar=False)
    draws = [rng.normal(0.1, 1.0, size=(400, 8)) for _ in range(60)]
    values = np.array([fid_to_reference(draw, mu, sigma) for draw in draws])
    low, high, groups = fid_jackknife_interval(draws[0], mu, sigma, 50)
    assert groups == 50 and low < values[0] < high and (low + high) / 2 == pytest.approx(values[0])
    half_widths = np.array([np.subtract(*fid_jackknife_interval(draw, mu, sigma, 50)[1::-1]) / 2 for draw in draws])
    # The jackknife's SE (half-width / 1.96) is within a factor 1.5 of the true sd of FID over independent draws.
    ratio = np.median(half_widths / 1.96) / values.std(ddof=1)
    assert 1 / 1.5 < ratio < 1.5
    assert fid_jackknife_interval(draws[0][:10], mu, sigma, 50)[2] == 5  # at most N/2 groups of 2
    with pytest.raises(ValueError, match="at least 2 groups"):
        fid_jackknife_interval(draws[0][:3], mu, sigma, 50)
