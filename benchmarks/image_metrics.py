"""PSNR and SSIM of reconstructions against targets (images in [0, 1]); `benchmarks.reconstruction_rows` turns
them and LPIPS into result rows.

Conventions (docs/results.md, following DEFT's `eval/psnr.py`): uint8 images are divided by 255, float images must
already lie in [0, 1]; each metric is computed per image and then averaged over images. SSIM uses the Gaussian
window of Wang et al. (σ = 1.5, 11 taps, population covariance), as torchmetrics does for DEFT/RED-diff, but with a
fixed data_range of 1 instead of one inferred from each image. PSNR of an identical pair is +inf: it stays +inf in
the per-image array, is left out of the mean, and is counted in `n_identical`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage.metrics import structural_similarity

from tunebench.config import ConfigError

SSIM_SIGMA = 1.5  # Gaussian window of Wang et al. 2004; with skimage's truncate=3.5 it spans 11 pixels
SSIM_WINDOW = 11


class ImageRangeError(ConfigError):
    """Images are not N×C×H×W uint8 or float in [0, 1], or the two sets do not match."""


@dataclass(frozen=True)
class MetricSummary:
    """A metric averaged over images, with the per-image values it came from."""

    mean: float
    per_image: np.ndarray
    n_identical: int = 0  # PSNR only: pairs with zero error (+inf), left out of `mean`


#################################################################################
#                              Input Conversion                                 #
#################################################################################


def to_unit_range(images, name: str = "images") -> np.ndarray:
    """Return N×C×H×W float64 in [0, 1] from uint8 (divided by 255) or float input already in [0, 1]."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if array.ndim != 4:
        raise ImageRangeError(f"{name} must be N×C×H×W, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0
    if not np.issubdtype(array.dtype, np.floating):
        raise ImageRangeError(f"{name} must be uint8 or float, got {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise ImageRangeError(f"{name} must lie in [0, 1] (found min {np.nanmin(array):.4g}, "
                              f"max {np.nanmax(array):.4g}); map model outputs with (x + 1) / 2 first")
    return array


def paired_images(pred, target) -> tuple[np.ndarray, np.ndarray]:
    """Convert both sets to [0, 1] float64 and check they pair image by image."""
    pred, target = to_unit_range(pred, "pred"), to_unit_range(target, "target")
    if pred.shape != target.shape:
        raise ImageRangeError(f"pred {pred.shape} and target {target.shape} must have the same N×C×H×W shape")
    return pred, target


#################################################################################
#                                PSNR and SSIM                                  #
#################################################################################


def psnr(pred, target) -> MetricSummary:
    """Per-image PSNR in dB (10·log10(1 / MSE), data_range 1); the mean is over non-identical pairs."""
    pred, target = paired_images(pred, target)
    mse = ((pred - target) ** 2).reshape(len(pred), -1).mean(axis=1)
    with np.errstate(divide="ignore"):  # MSE 0 → +inf on purpose
        per_image = 10.0 * np.log10(1.0 / mse)
    finite = np.isfinite(per_image)
    mean = float(per_image[finite].mean()) if finite.any() else float("inf")
    return MetricSummary(mean, per_image, int((~finite).sum()))


def ssim(pred, target) -> MetricSummary:
    """Per-image SSIM (Gaussian σ 1.5 window, data_range 1, averaged over channels), then the mean over images."""
    pred, target = paired_images(pred, target)
    if min(pred.shape[2:]) < SSIM_WINDOW:
        raise ImageRangeError(f"SSIM needs images of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels for its "
                              f"Gaussian window, got {pred.shape[2]}×{pred.shape[3]}")
    per_image = np.array([
        structural_similarity(p, t, data_range=1.0, channel_axis=0, gaussian_weights=True, sigma=SSIM_SIGMA,
                              use_sample_covariance=False)  # population covariance, as in Wang et al. and torchmetrics
        for p, t in zip(pred, target)
    ])
    return MetricSummary(float(per_image.mean()), per_image)

