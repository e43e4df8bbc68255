"""The scaffold figure's picks (deft.protein.figure): the best sample has the lowest motif RMSD and the median one
the middle RMSD, each moved onto the native motif."""

import numpy as np
import pytest

from deft.protein.figure import picked_sample
from deft.protein.motif_problems import Problem


def test_best_and_median_samples_are_picked_by_motif_rmsd_and_superposed():
    rng = np.random.default_rng(0)
    window = rng.normal(size=(12, 3)) * 5
    problem = Problem("P01", "1abcA", 0, "helix", [(2, 6)], window)
    # Five samples: the native window rotated and shifted, its motif perturbed by 0, 1, 2, 3 and 4 Å-scaled noise.
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    noise = rng.normal(size=(12, 3))
    samples = np.stack([(window + scale * noise) @ rotation.T + 7.0 for scale in (3, 0, 4, 1, 2)])
    best, best_rmsd = picked_sample(samples, problem, "best")
    median, median_rmsd = picked_sample(samples, problem, "median")
    assert best_rmsd == pytest.approx(0.0, abs=1e-4) and 0 < median_rmsd
    assert np.allclose(best, window, atol=1e-3)  # the noiseless sample, moved back onto the native window
    # Scale 2 (sample 4) is the middle of the five RMSDs: above scale 1's (sample 3).
    assert median_rmsd == pytest.approx(picked_sample(samples[4:5], problem, "best")[1])
    assert median_rmsd > picked_sample(samples[3:4], problem, "best")[1]
    assert not np.allclose(median, best)
