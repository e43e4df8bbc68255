"""DEFT forward operators: adjoints, SVDs, masks, measurement noise, the non-linear operators and the task registry."""

import math

import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F

from deft.operators.base import DenseLinear
from deft.operators.linear import (
    Convolution2D,
    avgpool_matrix,
    bicubic_matrix,
    deblur_gauss_matrix,
    motion_kernel,
    scaled_odd_size,
    sr_avgpool,
)
from deft.operators.masks import FREEFORM_LABEL, box_mask, freeform_mask, mask_batch, random_missing_fraction
from deft.operators.nonlinear import NONLINEAR_BLUR_LABEL, PhaseRetrieval
from deft.operators.task_settings import OPERATOR_NAMES, TASK_PRESETS, TaskConfig, task_config
from deft.operators.tasks import OPERATORS, build_operator
from tunebench.config import ConfigError

SVD_OPS = ["inpaint_box", "inpaint_random", "inpaint_freeform", "sr_avgpool", "sr_bicubic", "deblur_gauss"]
LINEAR_OPS = SVD_OPS + ["deblur_gauss_dps", "deblur_motion"]


def make(operator, resolution=16, channels=3, ids=(0, 1), **fields):
    """The registry operator for images `ids` with TaskConfig `fields` overridden."""
    return build_operator(TaskConfig(operator=operator, **fields), torch.tensor(ids), resolution, channels)


def images(batch, channels, resolution, seed=0, dtype=torch.float64):
    """Uniform random images in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, channels, resolution, resolution, generator=generator, dtype=dtype) * 2 - 1)


def smooth_image(channels, resolution, shift=0.0):
    """A smooth image in [-1, 1]: a different blob per channel."""
    grid = (torch.arange(resolution, dtype=torch.float64) + 0.5) / resolution
    rows, cols = grid[:, None], grid[None, :]
    blobs = [torch.exp(-((rows - 0.4 - 0.1 * c - shift) ** 2 + (cols - 0.55 + 0.05 * c) ** 2) / 0.05)
             for c in range(channels)]
    return (torch.stack(blobs) * 1.6 - 0.8)[None]


#################################################################################
#                          Linear operators and SVDs                            #
#################################################################################


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("operator", LINEAR_OPS)
def test_adjoint_identity(operator, channels):
    op = make(operator, channels=channels)
    x = images(2, channels, 16)
    y = torch.randn(op(x).shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    left, right = (op(x) * y).sum(), (x * op.adjoint(y)).sum()
    assert op.linear
    assert abs(float(left - right)) <= 1e-10 * float(left.abs() + right.abs())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("operator", SVD_OPS)
def test_svd_factors_are_consistent(operator, channels):
    op = make(operator, channels=channels)
    x = images(2, channels, 16)
    s = op.singulars()
    ax = op(x)
    assert torch.allclose(op.u(s * op.vt(x)), ax, atol=1e-12)
    assert torch.allclose(op.v(op.vt(x)), x, atol=1e-12)
    assert torch.allclose(op.vt(op.v(x)), x, atol=1e-12)
    assert torch.allclose(op(op.pinv(ax)), ax, atol=1e-6)  # A A† A = A (singular values stored in float32)
    unmeasured = (s == 0).expand_as(x)
    assert unmeasured.any()
    assert torch.all(op.ut(ax)[unmeasured] == 0)
    garbage = torch.where(unmeasured, torch.full_like(x, 7.0), op.vt(x))
    assert torch.allclose(op.u(s * op.vt(x)), op.u(s * garbage), atol=1e-12)  # u reads only entries with s > 0


def test_avgpool_forward_adjoint_and_pinv():
    op = sr_avgpool(16, 4)
    x = images(2, 3, 16)
    y = op(x)
    replicate = y.repeat_interleave(4, -1).repeat_interleave(4, -2)
    assert torch.allclose(y, F.avg_pool2d(x, 4), atol=1e-12)
    assert torch.allclose(op.pinv(y), replicate, atol=1e-6)
    assert torch.allclose(op.adjoint(y), replicate / 16, atol=1e-7)
    assert torch.allclose(op.singulars()[0, 0, :4, :4], torch.full((4, 4), 0.25))  # (1/sqrt 4)² per 2-D entry


@pytest.mark.parametrize("operator, matrix", [
    ("sr_bicubic", lambda: bicubic_matrix(16, 4)),
    ("deblur_gauss", lambda: deblur_gauss_matrix(16, 25.0)),
])
def test_separable_forward_is_r_x_rt_without_truncation(operator, matrix):
    op = make(operator, svd_zero=0.0)
    x = images(2, 3, 16)
    r = matrix()
    assert torch.allclose(op(x), r @ x @ r.T, atol=1e-6)


@pytest.mark.parametrize("operator, matrix", [
    ("sr_avgpool", lambda: avgpool_matrix(16, 4)),
    ("sr_bicubic", lambda: bicubic_matrix(16, 4)),
])
def test_separable_operator_matches_the_dense_reference(operator, matrix):
    op = make(operator, channels=1, svd_zero=0.0)
    r = matrix()
    dense = DenseLinear(torch.kron(r, r), (1, 16, 16))  # row-major vec(R X Rᵀ) = (R ⊗ R) vec(X)
    x = images(2, 1, 16)
    y = torch.randn(2, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.allclose(op(x).flatten(1), dense(x), atol=1e-6)
    assert torch.allclose(op.adjoint(y.reshape(2, 1, 4, 4)), dense.adjoint(y), atol=1e-6)
    assert torch.allclose(op.pinv(y.reshape(2, 1, 4, 4)), dense.pinv(y), atol=1e-5)


def test_bicubic_matrix_is_centred_and_normalised():
    r = bicubic_matrix(32, 4)
    ramp = torch.arange(32, dtype=torch.float64) + 0.5  # pixel centres
    assert torch.allclose(r.sum(1), torch.ones(8, dtype=torch.float64))
    # Keys' cubic reproduces linear functions: an interior output is the ramp at its block's centre
    assert torch.allclose((r @ ramp)[2:6], torch.tensor([10.0, 14.0, 18.0, 22.0], dtype=torch.float64))
    assert r.shape == (8, 32) and (r[3] != 0).sum() == 16  # 4f taps


def test_deblur_gauss_matrix_reproduces_ddrm_dropped_tap():
    ddrm, symmetric = deblur_gauss_matrix(16, 25.0), deblur_gauss_matrix(16, 25.0, drop_last_tap=False)
    row = ddrm[8]
    assert (row != 0).sum() == 4 and torch.equal(row[6:10] != 0, torch.ones(4, dtype=torch.bool))
    assert float(row.sum()) == pytest.approx(0.8, abs=2e-3)
    assert (symmetric[8] != 0).sum() == 5 and float(symmetric[8].sum()) == pytest.approx(1.0)
    assert torch.allclose(symmetric, symmetric.T)


def test_truncated_singular_values_are_zeroed():
    op = make("deblur_gauss")
    plain = make("deblur_gauss", svd_zero=0.0)
    assert (op.singulars() == 0).sum() > (plain.singulars() == 0).sum()
    assert float(op.singulars()[op.singulars() > 0].min()) >= 0.03 ** 2 - 1e-7


def test_conv2d_forward_is_zero_padded_correlation():
    kernel = torch.from_numpy(motion_kernel(5, 0.5, np.random.default_rng(3)))
    op = Convolution2D(kernel)
    x = images(1, 1, 16)
    expected = scipy.ndimage.correlate(x[0, 0].numpy(), kernel.numpy(), mode="constant")
    assert np.allclose(op(x)[0, 0].numpy(), expected, atol=1e-6)
    with pytest.raises(NotImplementedError, match="pseudo-inverse"):
        op.pinv(op(x))


def test_motion_kernels_are_seeded_normalised_and_scaled():
    assert [scaled_odd_size(61, r) for r in (256, 32, 16)] == [61, 9, 5]
    one, again = motion_kernel(9, 0.5, np.random.default_rng(0)), motion_kernel(9, 0.5, np.random.default_rng(0))
    other = motion_kernel(9, 0.5, np.random.default_rng(1))
    assert np.array_equal(one, again) and not np.allclose(one, other)
    assert one.min() >= 0 and one.sum() == pytest.approx(1.0)
    assert make("deblur_motion", resolution=32).kernel.shape == (9, 9)
    assert not torch.equal(make("deblur_motion", seed=0).kernel, make("deblur_motion", seed=1).kernel)


@pytest.mark.parametrize("operator", list(OPERATORS))
def test_output_shapes(operator):
    x = images(2, 3, 32)
    y = make(operator, resolution=32)(x)
    expected = {"sr_avgpool": 8, "sr_bicubic": 8, "phase_retrieval": 32 + 2 * 8}.get(operator, 32)
    assert y.shape == (2, 3, expected, expected) and y.dtype == x.dtype


def test_phase_retrieval_pad_matches_paper_scale():
    assert PhaseRetrieval(256).pad == 64 and PhaseRetrieval(16).pad == 4


#################################################################################
#                                   Masks                                       #
#################################################################################


@pytest.mark.parametrize("operator", ["inpaint_box", "inpaint_random", "inpaint_freeform"])
def test_mask_of_image_k_depends_only_on_seed_and_k(operator):
    first = make(operator, resolution=32, ids=(5, 2, 9)).singulars()
    second = make(operator, resolution=32, ids=(9, 5)).singulars()
    assert torch.equal(first[0], second[1]) and torch.equal(first[2], second[0])
    others = make(operator, resolution=32, ids=tuple(range(8))).singulars().flatten(1)
    distinct = len({tuple(row.tolist()) for row in others})
    assert distinct >= (5 if operator == "inpaint_box" else 8)  # 144 possible box positions at 32 px
    reseeded = make(operator, resolution=32, ids=(5, 2, 9), seed=1).singulars()
    assert not torch.equal(first, reseeded)
    assert first.shape == (3, 1, 32, 32) and set(first.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_freeform_coverage_in_range(resolution):
    coverage = [1 - freeform_mask(0, k, resolution).mean() for k in range(30)]
    assert 0.2 <= min(coverage) and max(coverage) <= 0.3
    assert max(coverage) - min(coverage) > 0.04  # the target is drawn, not fixed
    narrow = [1 - freeform_mask(3, k, resolution, 0.1, 0.12).mean() for k in range(5)]
    assert 0.1 <= min(narrow) and max(narrow) <= 0.12


def test_random_mask_removes_exactly_floor_p_pixels():
    masks = mask_batch("random", torch.arange(10), 32, seed=4, low=0.3, high=0.7)
    for k in range(10):
        p = random_missing_fraction(4, k)
        assert 0.3 <= p <= 0.7
        assert int((masks[k] == 0).sum()) == math.floor(p * 32 * 32)


def test_box_mask_is_a_square_of_the_requested_side_inside_the_margin():
    for k in range(10):
        hole = np.argwhere(box_mask(0, k, 32) == 0)
        (top, left), (bottom, right) = hole.min(0), hole.max(0)
        assert bottom - top + 1 == 16 and right - left + 1 == 16 and len(hole) == 256
        assert top >= 2 and left >= 2 and bottom <= 29 and right <= 29  # margin 32/16
    with pytest.raises(ValueError, match="box_high"):
        box_mask(0, 0, 16, 0.9, 0.9)


def test_freeform_inpainting_is_labelled_as_a_stand_in():
    op = make("inpaint_freeform")
    assert op.label == FREEFORM_LABEL and op.comparable is False
    assert make("inpaint_box").comparable is True


#################################################################################
#                         Measurement noise and gradients                       #
#################################################################################


def generators(seeds):
    """One CPU generator per image."""
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_measurement_noise_statistics_and_reproducibility():
    op = make("hdr", resolution=32, sigma_y=0.1)
    x = images(4, 3, 32, dtype=torch.float32)
    y = op.measure(x, generators([0, 1, 2, 3]))
    noise = y - op(x)
    assert float(noise.std()) == pytest.approx(0.2, rel=0.03)  # 2·sigma_y in [-1, 1] units
    assert abs(float(noise.mean())) < 0.01
    assert torch.equal(y, op.measure(x, generators([0, 1, 2, 3])))
    swapped = op.measure(x[[1, 0]], generators([1, 0]))
    assert torch.equal(swapped, y[[1, 0]])  # image i's noise comes from generator i only
    assert not torch.equal(y, op.measure(x, generators([4, 5, 6, 7])))
    assert torch.equal(make("hdr", resolution=32, sigma_y=0.0).measure(x, generators([0, 1, 2, 3])), op(x))


def test_masked_inpainting_measurements_are_zero_in_the_hole():
    op = make("inpaint_freeform", resolution=32, ids=(0, 1, 2, 3), sigma_y=0.1, noise="masked")
    x = images(4, 3, 32, dtype=torch.float32)
    y = op.measure(x, generators([0, 1, 2, 3]))
    hole = (op.mask == 0).expand_as(x)
    assert torch.all(y[hole] == 0)
    assert float((y - x)[~hole].std()) == pytest.approx(0.2, rel=0.05)


@pytest.mark.parametrize("sigma_y", [0.05, 0.0])
def test_linear_likelihood_grad_is_scaled_adjoint_residual(sigma_y):
    op = make("sr_avgpool", sigma_y=sigma_y)
    x, truth = images(2, 3, 16), images(2, 3, 16, seed=1)
    y = F.avg_pool2d(truth, 4)
    residual = F.avg_pool2d(x, 4) - y
    expected = -residual.repeat_interleave(4, -1).repeat_interleave(4, -2) / 16
    if sigma_y:
        expected = expected / (2 * sigma_y) ** 2
    assert torch.allclose(op.likelihood_grad(x, y), expected, atol=1e-9 * float(expected.abs().max()))


#################################################################################
#                           HDR and phase retrieval                             #
#################################################################################


def test_hdr_clip_pinv_and_true_gradient():
    op = make("hdr", sigma_y=0.05)
    x = images(2, 3, 16)
    y = images(2, 3, 16, seed=1)
    assert torch.equal(op(x), (2 * x).clamp(-1, 1))
    assert torch.equal(op.pinv(y), y / 2)
    inside = x.abs() < 0.5
    assert torch.allclose(op.pinv(op(x))[inside], x[inside])
    expected = -2 * (op(x) - y) * inside / 0.1 ** 2
    assert torch.allclose(op.likelihood_grad(x, y), expected)


def test_phase_retrieval_magnitudes_obey_parseval_dc_and_flip_invariance():
    op = make("phase_retrieval")
    x = images(2, 3, 16)
    x01 = (x + 1) / 2
    y = op(x)
    side = y.shape[-1]
    assert torch.allclose(y.pow(2).sum((-2, -1)), x01.pow(2).sum((-2, -1)))  # orthonormal FFT
    assert torch.allclose(y[..., side // 2, side // 2], x01.sum((-2, -1)) / side)  # centred DC term of (x+1)/2
    assert torch.allclose(op(x.flip(-2, -1)), y, atol=1e-10)  # |F| of a real image is flip-invariant
    assert not torch.allclose(op(x.flip(-1)), y, atol=1e-3)
    with pytest.raises(NotImplementedError):
        op.pinv(y)


def test_phase_swap_with_the_truth_returns_it():
    op = make("phase_retrieval")
    x = images(2, 3, 16)
    assert torch.allclose(op.phase_swap(op(x), x), x, atol=1e-9)
    guess = op.phase_swap(op(x), images(2, 3, 16, seed=5))
    assert guess.shape == x.shape and torch.isfinite(guess).all() and float(guess.min()) >= -1


@pytest.mark.parametrize("box", [False, True])
def test_hio_reduces_the_residual_and_is_per_image(box):
    op = make("phase_retrieval")
    truth = torch.cat([smooth_image(3, 16), smooth_image(3, 16, shift=0.1)])
    y = op(truth)
    init = (truth + 0.5 * smooth_image(3, 16, shift=-0.2).flip(-1)).clamp(-1, 1)
    out = op.hio(y, init, tie="channel_mean", box=box)
    assert out.shape == truth.shape and float(out.min()) >= -1
    before, after = op.residual_norm_sq(init, y), op.residual_norm_sq(out, y)
    assert torch.all(after < 0.5 * before)
    alone = op.hio(y[1:], init[1:], tie="channel_mean", box=box)
    assert torch.allclose(alone, out[1:], atol=1e-6)


#################################################################################
#                         Non-linear blur stand-in                              #
#################################################################################


def test_nonlinear_blur_is_seeded_and_labelled():
    x = images(2, 3, 16)
    op = make("nonlinear_blur")
    assert torch.equal(op(x), make("nonlinear_blur")(x))
    assert not torch.allclose(op(x), make("nonlinear_blur", nl_seed=7)(x), atol=1e-3)
    assert op.comparable is False and op.label == NONLINEAR_BLUR_LABEL
    assert op(x).min() >= -1 and op(x).max() <= 1
    with pytest.raises(ConfigError, match="task.bkse_weights"):  # the real model needs its weights file
        make("nonlinear_blur", bkse_weights="GOPRO_wVAE.pth")


def test_nonlinear_blur_is_not_affine_where_a_linear_blur_is():
    a, b = 0.4 * images(1, 3, 16), 0.4 * images(1, 3, 16, seed=1)
    zero = torch.zeros_like(a)

    def second_difference(op):
        """A(a + b) − A(a) − A(b) + A(0): zero for an affine A."""
        return float((op(a + b) - op(a) - op(b) + op(zero)).abs().max())

    assert second_difference(make("deblur_motion")) < 1e-12
    assert second_difference(make("nonlinear_blur")) > 1e-3


def test_nonlinear_blur_likelihood_grad_matches_finite_differences():
    op = make("nonlinear_blur", sigma_y=0.05)
    x = 0.5 * images(1, 3, 16)
    y = op.measure(0.5 * images(1, 3, 16, seed=1), generators([0]))
    direction = images(1, 3, 16, seed=2)

    def log_likelihood(z):
        """−½‖A(z) − y‖²/σ² with σ = 2·sigma_y."""
        return float(-0.5 * (op(z) - y).pow(2).sum() / 0.1 ** 2)

    eps = 1e-6
    numeric = (log_likelihood(x + eps * direction) - log_likelihood(x - eps * direction)) / (2 * eps)
    analytic = float((op.likelihood_grad(x, y) * direction).sum())
    assert analytic == pytest.approx(numeric, rel=1e-5)


#################################################################################
#                           Task presets and registry                           #
#################################################################################


def test_registry_and_presets():
    assert set(OPERATORS) == {"inpaint_box", "inpaint_random", "inpaint_freeform", "sr_avgpool", "sr_bicubic",
                              "deblur_gauss", "deblur_gauss_dps", "deblur_motion", "hdr", "phase_retrieval",
                              "nonlinear_blur"}
    for name in TASK_PRESETS:
        task = task_config(name)
        assert task.name == name and task.operator in OPERATORS
        assert build_operator(task, torch.arange(2), 16, 3).name == task.operator


def test_the_settings_name_the_registry_s_operators_in_its_order():
    assert OPERATOR_NAMES == tuple(OPERATORS)  # the light settings check names; the registry builds them
    assert task_config("inpaint") == TaskConfig()  # the defaults are DEFT's inpainting task
    assert task_config("inpaint").sigma_y == 0.05 and task_config("deblur_motion").sigma_y == 0.025
    assert task_config("sr4").factor == 4 and task_config("sr4").sigma_y == 0.0
    assert task_config("sr4", factor=2).factor == 2


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown task preset 'sr5'.*sr4"):
        task_config("sr5")
    with pytest.raises(ValueError, match="task.operator.*inpaint_box.*nonlinear_blur"):
        build_operator(TaskConfig(operator="blur"), torch.arange(1), 16, 3)
    with pytest.raises(ConfigError, match="task.freeform_low"):
        task_config("inpaint", freeform_low=0.4)
    with pytest.raises(ConfigError, match="task.sigma_y"):
        task_config("hdr", sigma_y=-0.1)
    with pytest.raises(ConfigError, match="unknown task setting.*facter"):
        task_config("sr4", facter=2)
    with pytest.raises(ValueError, match="task.factor"):
        build_operator(task_config("sr4", factor=3), torch.arange(1), 16, 3)
