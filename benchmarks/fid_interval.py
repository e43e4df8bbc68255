"""A 95% interval of FID over the generated images, from the grouped jackknife: FID without each group of images in
turn, the reference statistics fixed, gives a standard error, and the interval is FID ± 1.96 SE.

Not the percentile bootstrap: a bootstrap resample repeats about a third of the images, which shrinks their spread in
feature space, and FID's finite-sample bias is upwards, so the bootstrap distribution sits above the value and is
wider than the spread of FID over independent draws of as many images. Leaving images out keeps every recomputed FID
a plain FID of distinct images (docs/fid.md "Interval over the generated images").
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def symmetric_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The PSD square root of a symmetric matrix (eigenvalues below 0, round-off of a covariance, clipped to 0)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_terms(features, ref_sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The float64 features, the same features times R = √Σ_ref, and tr Σ_ref: what every FID against the reference
    needs, computed once.

    tr √(Σ Σ_ref) is the sum of the square roots of the eigenvalues of R Σ R (similar matrices), and R Σ R is the
    covariance of the projected features, so each (re)sample then costs one covariance and one symmetric eigenvalue
    problem (~2 ms for 500 × 128-d features on one core) instead of a general matrix square root (scipy's sqrtm,
    which torch-fidelity uses; the two agree to round-off, tests/benchmarks/test_fid_interval.py).
    """
    features = np.asarray(features, dtype=np.float64)
    ref_sigma = np.asarray(ref_sigma, dtype=np.float64)
    return features, features @ symmetric_sqrt(ref_sigma), float(np.trace(ref_sigma))


def sample_fid(features: np.ndarray, projected: np.ndarray, ref_mu: np.ndarray, ref_trace: float) -> float:
    """FID of one sample (rows of `frechet_terms`' features and projected features) against the reference:
    |μ − μ_ref|² + tr Σ + tr Σ_ref − 2 tr √(Σ Σ_ref), covariances with N − 1 as np.cov and the point estimate."""
    mu = features.mean(axis=0)
    trace = features.var(axis=0, ddof=1).sum()
    centred = projected - projected.mean(axis=0)
    eigenvalues = np.linalg.eigvalsh(centred.T @ centred / (len(projected) - 1))
    root_trace = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()  # round-off can leave a tiny negative eigenvalue
    return float(np.sum((mu - np.asarray(ref_mu)) ** 2) + trace + ref_trace - 2.0 * root_trace)


def fid_to_reference(features, ref_mu: np.ndarray, ref_sigma: np.ndarray) -> float:
    """FID of all the features (N×D) against the reference statistics, by the route the resamples take."""
    features, projected, ref_trace = frechet_terms(features, ref_sigma)
    return sample_fid(features, projected, ref_mu, ref_trace)


def fid_jackknife_interval(features, ref_mu: np.ndarray, ref_sigma: np.ndarray, groups: int,
                           level: float = 0.95) -> tuple[float, float, int]:
    """FID ± z·SE and the groups used: the standard error from the grouped (delete-a-group) jackknife over the
    generated images. The images, in their order (per-sample seeds), are cut into G = min(`groups`, N/2) contiguous
    groups, FID is recomputed without each group in turn, and SE² = (G − 1)/G · Σ (FID₋g − mean)² (Efron & Tibshirani
    1993, §11.5, the delete-d jackknife with groups). Unlike the percentile bootstrap, whose resamples repeat images
    and sit above the value, leaving images out keeps every FID a plain FID of distinct images; the interval is
    centred on the value (docs/fid.md)."""
    features, projected, ref_trace = frechet_terms(features, ref_sigma)
    groups = min(groups, len(features) // 2)  # groups of at least 2 images
    if groups < 2:
        raise ValueError(f"the jackknife needs at least 2 groups of 2 images; {len(features)} images give {groups}")
    value = sample_fid(features, projected, ref_mu, ref_trace)
    kept = [np.concatenate(parts) for parts in leave_one_out(np.array_split(np.arange(len(features)), groups))]
    left_out = np.array([sample_fid(features[rows], projected[rows], ref_mu, ref_trace) for rows in kept])
    error = math.sqrt((groups - 1) / groups * np.sum((left_out - left_out.mean()) ** 2))
    half = stats.norm.ppf((1 + level) / 2) * error
    return value - half, value + half, groups


def leave_one_out(parts: list[np.ndarray]) -> list[list[np.ndarray]]:
    """For each part, all the other parts."""
    return [parts[:index] + parts[index + 1:] for index in range(len(parts))]
