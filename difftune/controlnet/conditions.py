"""ControlNet conditions derived from images, and how faithfully a sample follows its condition (Diff-Tuning §4.3).

Five conditions, each computed from a uint8 N×H×W×C image batch with scikit-image, and one control-fidelity score
per condition (higher is better), compared between the condition of the real image and the same transform of the
generated sample:

| condition | what the model sees | fidelity score |
| --- | --- | --- |
| canny | Canny edges of the grey image (σ = `CANNY_SIGMA`), 1 channel | edge F1 with a 1-pixel tolerance |
| blur | Gaussian blur (σ = `BLUR_SIGMA`), 3 channels | PSNR (dB) between the blurred sample and the condition |
| lowres | 4× area downsampling, shown nearest-upsampled, 3 channels | PSNR (dB): downsampled sample vs condition |
| segmentation | Otsu threshold of the grey image, 1 channel | IoU of the two foreground masks |
| inpaint | the image with its centre half-square removed, plus the mask, 4 channels | PSNR (dB) on the kept pixels |

`chance_fidelity` is the score of unrelated pairs of the same images (each image against its neighbour's
condition): what a model that ignores the condition gets. The convergence threshold sits above it, halfway from chance
to a perfect 1 for F1 and IoU and `PSNR_MARGIN_DB` above it for the PSNR scores. `convergence_step` finds the
"sudden convergence" step of a fidelity curve: the first evaluated training step from which the score stays at or
above the threshold (`difftune.controlnet.summary` compares those steps between objectives).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.color import rgb2gray
from skimage.feature import canny
from skimage.filters import gaussian, threshold_otsu
from skimage.transform import downscale_local_mean

from difftune.controlnet.config import CONDITIONS

CANNY_SIGMA = 1.0
BLUR_SIGMA = 2.0
LOWRES_FACTOR = 4
EDGE_TOLERANCE = 1  # pixels: an edge pixel counts as matched if the other map has an edge this close
BOUNDED = ("canny", "segmentation")  # scores in [0, 1]; the others are PSNR in dB
PSNR_MARGIN_DB = 5.0


def _check_images(images: np.ndarray) -> np.ndarray:
    """uint8 N×H×W×C (C = 1 or 3) as float64 in [0, 1], or a ValueError naming what is wrong."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 N×H×W×C with C = 1 or 3, got {images.dtype} {images.shape}")
    return images.astype(np.float64) / 255.0


def _grey(image: np.ndarray) -> np.ndarray:
    """H×W grey levels of one H×W×C image in [0, 1]."""
    return rgb2gray(image) if image.shape[-1] == 3 else image[..., 0]


def _rgb(image: np.ndarray) -> np.ndarray:
    """H×W×3 (grey images repeated)."""
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def inpaint_mask(height: int, width: int) -> np.ndarray:
    """H×W bool mask of the kept pixels: everything but the centred square of half the side."""
    keep = np.ones((height, width), dtype=bool)
    keep[height // 4:height // 4 + height // 2, width // 4:width // 4 + width // 2] = False
    return keep


def _one_condition(name: str, image: np.ndarray) -> np.ndarray:
    """H×W×CHANNELS[name] condition of one image in [0, 1]."""
    if name == "canny":
        return canny(_grey(image), sigma=CANNY_SIGMA)[..., None].astype(np.float64)
    if name == "blur":
        return gaussian(_rgb(image), sigma=BLUR_SIGMA, channel_axis=-1)
    if name == "lowres":
        small = downscale_local_mean(_rgb(image), (LOWRES_FACTOR, LOWRES_FACTOR, 1))
        return np.repeat(np.repeat(small, LOWRES_FACTOR, axis=0), LOWRES_FACTOR, axis=1)
    if name == "segmentation":
        grey = _grey(image)
        # A flat image has no threshold; everything is background then.
        return (grey > threshold_otsu(grey))[..., None].astype(np.float64) if np.ptp(grey) > 0 else np.zeros(
            (*grey.shape, 1))
    if name == "inpaint":
        keep = inpaint_mask(*image.shape[:2])[..., None]
        return np.concatenate([_rgb(image) * keep, keep.astype(np.float64)], axis=-1)
    raise ValueError(f"unknown condition {name!r}; choose one of {', '.join(CONDITIONS)}")


def make_conditions(name: str, images: np.ndarray) -> np.ndarray:
    """float32 N×CHANNELS[name]×H×W conditions in [-1, 1] (the model's input range) for uint8 N×H×W×C images."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; choose one of {', '.join(CONDITIONS)}")
    images = _check_images(images)
    out = np.stack([_one_condition(name, image) for image in images])
    return (out * 2.0 - 1.0).transpose(0, 3, 1, 2).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two arrays in [0, 1] (capped at 100 dB for identical inputs)."""
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse <= 1e-10 else float(10 * np.log10(1.0 / mse))


def edge_f1(reference: np.ndarray, edges: np.ndarray, tolerance: int = EDGE_TOLERANCE) -> float:
    """F1 of two H×W boolean edge maps, a pixel matching if the other map has an edge within `tolerance` pixels
    (1 when both are empty: nothing to draw, nothing drawn)."""
    reference, edges = reference.astype(bool), edges.astype(bool)
    if not reference.any() and not edges.any():
        return 1.0
    grow = np.ones((2 * tolerance + 1, 2 * tolerance + 1), dtype=bool)
    precision = (edges & ndimage.binary_dilation(reference, grow)).sum() / max(edges.sum(), 1)
    recall = (reference & ndimage.binary_dilation(edges, grow)).sum() / max(reference.sum(), 1)
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1 when both are empty)."""
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


def fidelity(name: str, images: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Per-pair control fidelity (see the module table) of `samples` to the condition of `images` (both uint8
    N×H×W×C, pair i = the condition of image i and the sample generated from it)."""
    reals, fakes = _check_images(images), _check_images(samples)
    if reals.shape[:3] != fakes.shape[:3]:
        raise ValueError(f"images {reals.shape} and samples {fakes.shape} must pair up (same N, H, W)")
    scores = []
    for real, fake in zip(reals, fakes):
        condition, redone = _one_condition(name, real), _one_condition(name, fake)
        if name == "canny":
            scores.append(edge_f1(condition[..., 0], redone[..., 0]))
        elif name == "segmentation":
            scores.append(_iou(condition[..., 0] > 0.5, redone[..., 0] > 0.5))
        elif name == "inpaint":
            keep = inpaint_mask(*real.shape[:2])
            scores.append(_psnr(_rgb(real)[keep], _rgb(fake)[keep]))
        else:
            scores.append(_psnr(condition, redone))
    return np.asarray(scores)


def chance_fidelity(name: str, images: np.ndarray) -> float:
    """Mean fidelity of unrelated pairs: image i's condition against image i+1 (cyclically); needs two images."""
    if len(images) < 2:
        raise ValueError("chance fidelity needs at least two images")
    return float(fidelity(name, images, np.roll(images, 1, axis=0)).mean())


def convergence_threshold(name: str, chance: float) -> float:
    """The score a model must keep to count as following the condition: halfway from chance to 1 (F1, IoU), or
    PSNR_MARGIN_DB above chance (PSNR)."""
    return chance + 0.5 * (1.0 - chance) if name in BOUNDED else chance + PSNR_MARGIN_DB


def convergence_step(steps: Sequence[int], scores: Sequence[float], threshold: float) -> int | None:
    """The first evaluated step from which every later score is ≥ `threshold` (None if the last one is below):
    a curve that crosses and falls back has not converged yet."""
    steps, scores = list(steps), np.asarray(scores, dtype=float)
    if len(steps) != len(scores) or not steps:
        raise ValueError(f"need one score per step, got {len(steps)} steps and {len(scores)} scores")
    if list(steps) != sorted(steps):
        raise ValueError("steps must be increasing")
    below = np.flatnonzero(~(scores >= threshold))  # NaN counts as below
    if len(below) and below[-1] == len(steps) - 1:
        return None
    return steps[below[-1] + 1] if len(below) else steps[0]
