"""ControlNet conditions and control-fidelity scores (difftune.controlnet.conditions): shapes, ranges and what each
score rewards."""

import numpy as np
import pytest

from difftune.controlnet.conditions import (
    convergence_step,
    edge_f1,
    fidelity,
    inpaint_mask,
    make_conditions,
)
from difftune.controlnet.config import CHANNELS, CONDITIONS


def _squares(count=3, side=32, seed=0):
    """uint8 RGB images of bright rectangles on dark noise: clear edges and a clear foreground."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(count, side, side, 3)).astype(np.uint8)
    for k in range(count):
        top, left = rng.integers(4, 12, size=2)
        images[k, top:top + 12 + k, left:left + 10] = 220
    return images


@pytest.mark.parametrize("name", CONDITIONS)
def test_conditions_have_the_declared_channels_and_range(name):
    out = make_conditions(name, _squares())
    assert out.shape == (3, CHANNELS[name], 32, 32) and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0 and out.std() > 0


@pytest.mark.parametrize("name", CONDITIONS)
def test_a_sample_equal_to_its_image_scores_best(name):
    images = _squares()
    other = _squares(seed=5)
    same, different = fidelity(name, images, images), fidelity(name, images, other)
    assert (same >= different).all() and (same > different).any()
    if name in ("canny", "segmentation"):
        assert np.allclose(same, 1.0)


def test_edge_f1_tolerates_one_pixel_and_punishes_missing_edges():
    reference = np.zeros((16, 16), dtype=bool)
    reference[8, 2:14] = True
    shifted = np.roll(reference, 1, axis=0)
    assert edge_f1(reference, shifted) == 1.0 and edge_f1(reference, np.roll(reference, 3, axis=0)) == 0.0
    half = reference.copy()
    half[8, 8:] = False  # keeps columns 2–7; with the 1-pixel tolerance it recalls 7 of 12, precision 1
    assert edge_f1(reference, half) == pytest.approx(2 * (7 / 12) / (1 + 7 / 12))
    assert edge_f1(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0


def test_inpaint_condition_hides_the_centre_and_scores_only_kept_pixels():
    images = _squares()
    condition = make_conditions("inpaint", images)
    keep = inpaint_mask(32, 32)
    assert keep.sum() == 32 * 32 - 16 * 16
    assert np.all(condition[:, :3, ~keep] == -1.0) and np.all(condition[:, 3, keep] == 1.0)
    changed = images.copy()
    changed[:, ~keep] = 255  # only the hidden square differs
    assert np.allclose(fidelity("inpaint", images, changed), 100.0)


def test_convergence_step_needs_the_score_to_stay_above():
    steps = [100, 200, 300, 400, 500]
    assert convergence_step(steps, [0.1, 0.6, 0.3, 0.7, 0.8], 0.5) == 400  # crossed at 200, fell back at 300
    assert convergence_step(steps, [0.6, 0.6, 0.7, 0.7, 0.8], 0.5) == 100
    assert convergence_step(steps, [0.6, 0.6, 0.7, 0.7, 0.4], 0.5) is None
    assert convergence_step(steps, [0.6, float("nan"), 0.7, 0.7, 0.8], 0.5) == 300
    with pytest.raises(ValueError, match="one score per step"):
        convergence_step(steps, [0.1], 0.5)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="uint8"):
        make_conditions("canny", np.zeros((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="unknown condition"):
        make_conditions("depth", _squares())
    with pytest.raises(ValueError, match="pair up"):
        fidelity("blur", _squares(3), _squares(2))
