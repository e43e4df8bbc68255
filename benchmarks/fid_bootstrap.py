"""A percentile-bootstrap 95% interval of FID over the generated images: their features are redrawn with replacement,
the reference statistics stay fixed, and FID is recomputed for every resample.

FID's bootstrap distribution lies above the point estimate: a resample repeats about a third of the images, which
shrinks its spread in feature space (a smaller effective sample), and FID's finite-sample bias is upwards. The
interval is therefore shifted up and may not contain the value itself; it measures how much the number moves with
the particular generated images, not the model's true FID (docs/fid.md "Bootstrap interval").
"""

from __future__ import annotations

import numpy as np

from benchmarks.intervals import percentile_interval, resample_indices


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
    which torch-fidelity uses; the two agree to round-off, tests/benchmarks/test_fid_bootstrap.py).
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


def fid_resamples(features, ref_mu: np.ndarray, ref_sigma: np.ndarray, resamples: int,
                  seed: int = 0) -> np.ndarray:
    """FID of each of `resamples` bootstrap resamples of the generated `features` (N×D) against fixed statistics."""
    features, projected, ref_trace = frechet_terms(features, ref_sigma)
    return np.array([sample_fid(features[rows], projected[rows], ref_mu, ref_trace)
                     for rows in resample_indices(len(features), resamples, seed)])


def fid_bootstrap_interval(features, ref_mu: np.ndarray, ref_sigma: np.ndarray, resamples: int, seed: int = 0,
                           level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of `fid_resamples` (see the module docstring for why it sits above the value)."""
    return percentile_interval(fid_resamples(features, ref_mu, ref_sigma, resamples, seed), level)
