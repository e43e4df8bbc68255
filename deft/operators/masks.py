"""Inpainting masks (1 = keep, 0 = hole), each a pure function of (seed, image id, resolution).

Image k's mask is drawn from a numpy generator seeded by [seed, k] alone, so it is the same in every batch, in
every order and for every method (as DEFT's `main.py` does for the baselines, `H.set_indices`; its own DEFT branch
reuses masks 0…B−1 in every batch). Kinds (DPS `util/img_utils.py`, `mask_generator`):

- box: DPS's square hole, side uniform in [box_low, box_high]·resolution, corner at least resolution/16 from the
  border (DPS: 128 px at 256 px, margin 16);
- random: DPS's code, a missing fraction p ~ U(0.3, 0.7) and exactly ⌊p·H·W⌋ pixels removed;
- freeform: seeded brush strokes covering 20–30 % of the image, a stand-in for Palette's mask file (below).
"""

from __future__ import annotations

import math

import numpy as np
import torch

FREEFORM_LABEL = "seeded free-form strokes (stand-in for Palette's 20-30% masks; not the benchmark mask file)"


def image_rng(seed: int, image_id: int) -> np.random.Generator:
    """The generator of image `image_id`'s mask: seeded by [seed, image_id] only."""
    return np.random.default_rng([int(seed), int(image_id)])


def box_mask(seed: int, image_id: int, resolution: int, low: float = 0.5, high: float = 0.5) -> np.ndarray:
    """A square hole of side uniform in [round(low·res), round(high·res)] pixels, DPS's placement.

    The corner's row and column are uniform in [margin, res − margin − side) with margin = res // 16 (DPS's 16
    at 256 px; its upper bound is exclusive as numpy's randint). Returns a float32 H×W array, 1 = keep.
    """
    rng = image_rng(seed, image_id)
    side = int(rng.integers(round(low * resolution), round(high * resolution) + 1))
    margin = resolution // 16
    if resolution - margin - side <= margin:
        raise ValueError(f"a box of {side} px leaves no room at {resolution} px with margin {margin}; "
                         "lower task.box_high")
    top, left = rng.integers(margin, resolution - margin - side, size=2)
    mask = np.ones((resolution, resolution), dtype=np.float32)
    mask[top:top + side, left:left + side] = 0
    return mask


def random_missing_fraction(seed: int, image_id: int, low: float = 0.3, high: float = 0.7) -> float:
    """The missing fraction p ~ U(low, high) of image `image_id`: the first draw of its generator."""
    return float(image_rng(seed, image_id).uniform(low, high))


def random_mask(seed: int, image_id: int, resolution: int, low: float = 0.3, high: float = 0.7) -> np.ndarray:
    """Exactly ⌊p·H·W⌋ pixels removed, chosen without replacement, p = `random_missing_fraction` (DPS code)."""
    rng = image_rng(seed, image_id)
    pixels = resolution * resolution
    missing = math.floor(rng.uniform(low, high) * pixels)
    mask = np.ones(pixels, dtype=np.float32)
    mask[rng.choice(pixels, size=missing, replace=False)] = 0
    return mask.reshape(resolution, resolution)


def _segment_pixels(start: np.ndarray, end: np.ndarray, width: float, resolution: int):
    """(rows, cols, t) of the pixels whose centres lie within width/2 of the segment, t = position along it."""
    radius = width / 2
    lo = np.floor(np.minimum(start, end) - radius).astype(int).clip(0, resolution)
    hi = np.ceil(np.maximum(start, end) + radius).astype(int).clip(0, resolution)
    rows, cols = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]]
    centres = np.stack([rows + 0.5, cols + 0.5], axis=-1)
    direction = end - start
    length_sq = max(float(direction @ direction), 1e-12)
    t = np.clip((centres - start) @ direction / length_sq, 0.0, 1.0)
    distance = np.linalg.norm(centres - (start + t[..., None] * direction), axis=-1)
    inside = distance <= radius
    return rows[inside], cols[inside], t[inside]


def freeform_mask(seed: int, image_id: int, resolution: int, low: float = 0.2, high: float = 0.3) -> np.ndarray:
    """Random brush strokes whose hole covers a fraction uniform in [low, high] of the image (FREEFORM_LABEL).

    Palette's "20-30% freeform" file cannot be obtained offline, so this draws strokes in its style (4–12
    vertices, segment length around diagonal/8, widths 12–40 px at 256 px scaled with the resolution) until the
    drawn target coverage is reached; the last segment is cut where the target is met, so the coverage lands
    inside [low, high] for every image. Returns a float32 H×W array, 1 = keep.
    """
    rng = image_rng(seed, image_id)
    pixels = resolution * resolution
    target = min(max(round(rng.uniform(low, high) * pixels), math.ceil(low * pixels)), math.floor(high * pixels))
    scale = resolution / 256
    radius = math.sqrt(2) * resolution / 8
    hole = np.zeros((resolution, resolution), dtype=bool)
    covered = 0
    for _ in range(10_000):  # coverage stays below `high`, so fresh pixels keep coming; this bound only guards bugs
        vertex = rng.uniform(0, resolution, size=2)
        heading = rng.uniform(0, 2 * math.pi)
        width = max(rng.uniform(12 * scale, 40 * scale), 1.0)
        for _ in range(int(rng.integers(4, 13))):
            heading += rng.uniform(-2 * math.pi / 5, 2 * math.pi / 5)
            length = float(np.clip(rng.normal(radius, radius / 2), 0, 2 * radius))
            end = np.clip(vertex + length * np.array([math.sin(heading), math.cos(heading)]), 0, resolution)
            rows, cols, t = _segment_pixels(vertex, end, width, resolution)
            fresh = ~hole[rows, cols]
            rows, cols, t = rows[fresh], cols[fresh], t[fresh]
            keep = np.argsort(t, kind="stable")[:target - covered]  # cut the stroke where the target is met
            hole[rows[keep], cols[keep]] = True
            covered += keep.size
            if covered >= target:
                return (~hole).astype(np.float32)
            vertex = end
    raise RuntimeError(f"free-form mask for image {image_id} did not reach its coverage target")


MASKS = {"box": box_mask, "random": random_mask, "freeform": freeform_mask}


def mask_batch(kind: str, image_ids: torch.Tensor, resolution: int, seed: int, low: float, high: float
               ) -> torch.Tensor:
    """B×1×H×W float32 masks for `image_ids` (1 = keep); mask i depends only on (seed, image_ids[i])."""
    if kind not in MASKS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {', '.join(MASKS)}")
    ids = [int(k) for k in torch.as_tensor(image_ids).flatten()]
    if any(k < 0 for k in ids):
        raise ValueError(f"image ids must be >= 0 to seed masks, got {min(ids)}")
    masks = [MASKS[kind](seed, k, resolution, low, high) for k in ids]
    return torch.from_numpy(np.stack(masks)).unsqueeze(1)
