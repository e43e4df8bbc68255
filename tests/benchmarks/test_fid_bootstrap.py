"""FID's bootstrap interval over the generated images: the eigenvalue route equals torch-fidelity's FID, the
resamples are reproducible, and their distribution lies above the value (the bias docs/fid.md describes)."""

import numpy as np
import pytest

from benchmarks.fid_bootstrap import fid_bootstrap_interval, fid_resamples, fid_to_reference, symmetric_sqrt
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


def test_resamples_are_reproducible_and_lie_above_the_value():
    rng = np.random.default_rng(2)
    real, generated = rng.normal(size=(2000, 8)), rng.normal(0.1, 1.0, size=(200, 8))
    mu, sigma = real.mean(axis=0), np.cov(real, rowvar=False)
    value = fid_to_reference(generated, mu, sigma)
    fids = fid_resamples(generated, mu, sigma, 200, seed=3)
    assert len(fids) == 200 and np.array_equal(fids, fid_resamples(generated, mu, sigma, 200, seed=3))
    assert not np.array_equal(fids, fid_resamples(generated, mu, sigma, 200, seed=4))
    # A resample repeats about a third of the images: less spread, a larger FID (the upward bias of the interval).
    assert np.median(fids) > value
    low, high = fid_bootstrap_interval(generated, mu, sigma, 200, seed=3)
    assert (low, high) == pytest.approx(tuple(np.quantile(fids, [0.025, 0.975])))
    assert low < high
