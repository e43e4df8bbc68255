"""The operators' official behaviours (alexdenker/DEFT `htransform/likelihoods.py`, `utils/degredations.py`; DDRM's
`functions/svd_replacement.py`) on small tensors, and the task switches that select the alternatives."""

import pytest
import torch

from deft.operators.base import DenseLinear
from deft.operators.linear import Inpainting, deblur_gauss, deblur_gauss_matrix
from deft.operators.nonlinear import HDR, PhaseRetrieval
from deft.operators.task_settings import TaskConfig, task_config
from deft.operators.tasks import build_operator
from tunebench.config import ConfigError

KEEP = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])  # 1×1×2×2 mask: the top-right pixel is the hole


def generators(seeds):
    """One CPU generator per image."""
    return [torch.Generator().manual_seed(s) for s in seeds]


def make(operator, ids=(0, 1), resolution=16, channels=3, **fields):
    """The registry operator for images `ids` with TaskConfig `fields` overridden."""
    return build_operator(TaskConfig(operator=operator, **fields), torch.tensor(ids), resolution, channels)


#################################################################################
#                                  Inpainting                                   #
#################################################################################


def test_official_inpainting_gradient_has_the_opposite_sign_and_reads_the_hole():
    op = Inpainting(KEEP, sigma_y=0.05)  # noise std 0.1 in [-1, 1] units: 1/σ² = 100
    x = torch.tensor([[[[0.5, 0.3], [-0.2, 0.1]]]])
    y = torch.tensor([[[[0.4, 0.07], [-0.2, 0.3]]]])  # 0.07 is noise in the hole
    official = torch.tensor([[[[10.0, -7.0], [0.0, -20.0]]]])  # +(m ⊙ x − y)/σ²
    exact = torch.tensor([[[[-10.0, 0.0], [0.0, 20.0]]]])  # −m ⊙ (m ⊙ x − y)/σ²
    assert torch.allclose(op.official_likelihood_grad(x, y), official, atol=1e-4)
    assert torch.allclose(op.likelihood_grad(x, y), exact, atol=1e-4)


def test_official_inpainting_noise_fills_the_hole_and_masked_noise_leaves_it_zero():
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    official = make("inpaint_freeform", ids=(0, 1, 2, 3), resolution=32, sigma_y=0.1)
    masked = make("inpaint_freeform", ids=(0, 1, 2, 3), resolution=32, sigma_y=0.1, noise="masked")
    y, y_masked = official.measure(x, generators(range(4))), masked.measure(x, generators(range(4)))
    hole = (official.mask == 0).expand_as(x)
    assert float(y[hole].std()) == pytest.approx(0.2, rel=0.05)  # 2·sigma_y, x contributes nothing there
    assert torch.all(y_masked[hole] == 0)
    assert torch.equal(y[~hole], y_masked[~hole])  # the same draws on the kept pixels
    # the hole is no measurement: DPS's residual is the same either way
    guess = torch.zeros_like(x)
    assert torch.allclose(official.residual_norm_sq(guess, y), masked.residual_norm_sq(guess, y_masked))
    assert torch.allclose(official.pinv(y), masked.pinv(y_masked))


#################################################################################
#                                      HDR                                      #
#################################################################################


def test_official_hdr_gradient_is_half_the_residual_on_saturated_pixels_too():
    op = HDR(sigma_y=0.05)  # 1/σ² = 100
    x = torch.tensor([[[[0.25, 0.75, -0.9]]]])  # A x = (0.5, 1.0, -1.0): the last two saturate
    y = torch.tensor([[[[0.4, 0.8, -1.0]]]])  # residual (0.1, 0.2, 0.0)
    assert torch.allclose(op.official_likelihood_grad(x, y), torch.tensor([[[[-5.0, -10.0, 0.0]]]]), atol=1e-4)
    assert torch.allclose(op.likelihood_grad(x, y), torch.tensor([[[[-20.0, 0.0, 0.0]]]]), atol=1e-4)


#################################################################################
#                               Phase retrieval                                 #
#################################################################################


def test_official_phase_gradient_is_taken_in_unit_range_without_noise_scaling():
    op = PhaseRetrieval(8, sigma_y=0.05)
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    y = op(torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2 - 1)
    direction = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)

    def loss(u):
        """The official −‖y − |F pad u|‖²/2 of the [0, 1] image u."""
        return float(-(y - op(2 * u - 1)).pow(2).sum() / 2)

    u, eps = (x + 1) / 2, 1e-6
    numeric = (loss(u + eps * direction) - loss(u - eps * direction)) / (2 * eps)
    official = op.official_likelihood_grad(x, y)
    assert float((official * direction).sum()) == pytest.approx(numeric, rel=1e-6)
    assert torch.allclose(official, 2 * 0.1 ** 2 * op.likelihood_grad(x, y))  # ×2 for u, no 1/σ²


def test_phase_rough_inverse_is_the_measured_magnitudes_with_zero_phase():
    op = PhaseRetrieval(16)
    grid = torch.arange(16, dtype=torch.float64)

    def blob(row, col):
        """2·exp(−d²/2) − 1 around (row, col): a narrow bump, ~0 at the image's border."""
        return 2 * torch.exp(-((grid[:, None] - row) ** 2 + (grid[None, :] - col) ** 2) / 2)[None, None] - 1

    centred = blob(8, 8)  # (x + 1)/2 is centred on the padded array's centre: its spectrum is real and ≥ 0
    assert torch.allclose(op.rough_inverse(op(centred)), centred, atol=1e-6)
    assert torch.allclose(op.rough_inverse(op(blob(10, 5))), centred, atol=1e-6)  # the shift lives in the phase


def hio_inputs():
    """Two 3-channel images' magnitudes and a warm start unlike them."""
    grid = torch.linspace(-1, 1, 8, dtype=torch.float64)
    truth = torch.stack([torch.stack([torch.tanh(3 * (grid[:, None] + grid[None, :] * c) + k) for c in range(3)])
                         for k in range(2)])
    init = truth.flip(-1) * 0.5
    return PhaseRetrieval(8), truth, init


def test_official_hio_tie_copies_channel_zero_of_the_first_image_only():
    op, truth, init = hio_inputs()
    y = op(truth)
    out = op.hio(y, init, rounds=4, iterations=3)  # the tie runs through round 3, the last one here
    assert torch.equal(out[0, 1], out[0, 0]) and torch.equal(out[0, 2], out[0, 0])
    assert not torch.allclose(out[1, 1], out[1, 0], atol=1e-3)
    untied = op.hio(y[1:], init[1:], rounds=4, iterations=3, tie_round=-1)
    assert torch.allclose(out[1:], untied, atol=1e-12)  # the second image is never tied
    alone = op.hio(y[1:], init[1:], rounds=4, iterations=3)
    assert not torch.allclose(alone, out[1:], atol=1e-3)  # so its result depends on its place in the batch


def test_channel_mean_hio_tie_ties_every_image_on_its_own():
    op, truth, init = hio_inputs()
    y = op(truth)
    out = op.hio(y, init, rounds=4, iterations=3, tie="channel_mean")
    assert torch.allclose(out[:, 1:], out[:, :1].expand(-1, 2, -1, -1), atol=1e-12)
    alone = op.hio(y[1:], init[1:], rounds=4, iterations=3, tie="channel_mean")
    assert torch.allclose(alone, out[1:], atol=1e-12)
    with pytest.raises(ValueError, match="HIO channel tie 'first'"):
        op.hio(y, init, tie="first")


#################################################################################
#                               Non-linear blur                                 #
#################################################################################


def test_official_blur_gradient_and_start_apply_the_blur_itself():
    op = make("nonlinear_blur", sigma_y=0.0)  # noiseless, as the official blur
    x = 0.5 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4), dtype=torch.float64) - 0.25
    y = op(0.5 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    residual = op(x) - y
    assert torch.equal(op.rough_inverse(y), op(y))
    assert torch.equal(op.official_likelihood_grad(x, y), -op(residual))
    assert not torch.allclose(op.official_likelihood_grad(x, y), op.likelihood_grad(x, y), atol=1e-2)


#################################################################################
#                      Deblurring: DDRM's singular-value pairing                #
#################################################################################


def ddrm_deblurring_forward(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """DDRM's `Deblurring.H` transcribed: Vᵀ per channel, the (rank, channel) layout, `_singulars.repeat(1, 3)`."""
    n, channels = matrix.shape[0], x.shape[1]
    u, s, vh = torch.linalg.svd(matrix)
    singulars, perm = (s[:, None] * s[None, :]).reshape(n * n).sort(descending=True, stable=True)
    temp = (vh @ x @ vh.T).reshape(x.shape[0], channels, n * n)[:, :, perm].permute(0, 2, 1).reshape(x.shape[0], -1)
    temp = singulars.repeat(1, channels).reshape(-1) * temp
    back = torch.zeros(x.shape[0], n * n, channels, dtype=x.dtype)
    back[:, perm, :] = temp.reshape(x.shape[0], n * n, channels)
    return u @ back.permute(0, 2, 1).reshape(x.shape) @ u.T


def test_official_deblur_singulars_are_ddrm_s_operator_and_correct_ones_the_blur():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(6), dtype=torch.float64) * 2 - 1
    matrix = deblur_gauss_matrix(8, 1.0)
    official = make("deblur_gauss", resolution=8, blur_sigma=1.0, svd_zero=0.0, deblur_singulars="official")
    correct = make("deblur_gauss", resolution=8, blur_sigma=1.0, svd_zero=0.0)
    assert torch.allclose(official(x), ddrm_deblurring_forward(matrix, x), atol=1e-6)
    assert torch.allclose(correct(x), matrix @ x @ matrix.T, atol=1e-6)
    assert float((official(x) - correct(x)).abs().max()) > 0.05
    assert official.singulars().shape == (1, 3, 8, 8) and correct.singulars().shape == (1, 1, 8, 8)
    assert torch.allclose(official(official.pinv(official(x))), official(x), atol=1e-5)  # still an SVD operator
    grey = deblur_gauss(8, 1.0, zero_below=0.0, ddrm_pairing_channels=1)
    assert torch.allclose(grey(x[:, :1]), correct(x[:, :1]), atol=1e-6)  # one channel: the pairing is right


def test_the_switches_name_the_key_and_the_values():
    assert task_config("inpaint").gradient == "official" and task_config("inpaint").noise == "official"
    for key in ("gradient", "phase_grad_at", "hio_tie", "noise", "deblur_singulars"):
        with pytest.raises(ConfigError, match=f"config key 'task.{key}' = 'bogus' must be one of"):
            task_config("inpaint", **{key: "bogus"})


def test_dense_linear_official_gradient_is_the_exact_one():
    matrix = torch.randn(3, 4, generator=torch.Generator().manual_seed(7))
    op = DenseLinear(matrix, (1, 2, 2), sigma_y=0.05)
    inputs = torch.Generator().manual_seed(68)  # the draw that once failed an element-wise rtol of 1e-5
    x = torch.randn(2, 1, 2, 2, dtype=torch.float64, generator=inputs)
    y = torch.randn(2, 3, dtype=torch.float64, generator=inputs)
    expected = -((x.flatten(1) @ matrix.double().T - y) @ matrix.double()).reshape(2, 1, 2, 2) / 0.1 ** 2
    # Exact up to rounding, measured against the gradient's scale: a small entry of a large gradient carries the
    # same absolute rounding error as the large ones.
    torch.testing.assert_close(op.official_likelihood_grad(x, y), expected, rtol=1e-6,
                               atol=1e-6 * float(expected.abs().max()))
