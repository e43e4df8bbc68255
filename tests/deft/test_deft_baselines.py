"""Baseline samplers (DPS, ΠGDM, DDRM, DDNM, RED-diff) on a 16-pixel Gaussian toy with a known posterior."""

import pytest
import torch
from diffusers import UNet2DModel

from deft.backbone import FrozenEps
from deft.baselines import BASELINES, DDRMConfig, DPSConfig, RedDiffConfig, config_for, run_baseline, supports
from deft.baselines.pigdm import pigdm_vector
from deft.method_names import BASELINE_NAMES
from deft.operators.base import DenseLinear, LinearOperator, Operator
from tests.deft.gaussian import GaussianPrior
from tunebench.config import DiffusionConfig
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (1, 4, 4)
SIGMA_Y = 0.025  # [0, 1] units: noise std 0.05 on [-1, 1] images
FAST = {"dps": {"steps": 40, "scale": 0.02}, "pigdm": {"steps": 20}, "ddrm": {"steps": 10}, "ddnm": {"steps": 20},
        "reddiff": {"steps": 40}}


class PlainLinear(LinearOperator):
    """The same matrix as a linear operator with an adjoint but no SVD and no pseudo-inverse."""

    name = "plain"

    def __init__(self, matrix, sigma_y=0.0):
        """Keep the m×16 matrix."""
        super().__init__(sigma_y)
        self.matrix = matrix.float()

    def forward(self, x):
        """M·vec(x)."""
        return x.flatten(1) @ self.matrix.T

    def adjoint(self, y):
        """Mᵀy as an image."""
        return (y @ self.matrix).reshape(-1, *SHAPE)


class ClipOp(Operator):
    """A non-linear, HDR-like operator without a pseudo-inverse: A(x) = clip(2x, -1, 1)."""

    name = "clip"

    def forward(self, x):
        """clip(2x, -1, 1)."""
        return (2 * x).clamp(-1, 1)


class HalfPinvClip(ClipOp):
    """The same non-linear operator with RED-diff's HDR 'pseudo-inverse' y/2."""

    name = "clip_pinv"

    def pinv(self, y):
        """y/2."""
        return y / 2


@pytest.fixture(scope="module")
def schedule():
    """The linear-β 1000-step DDPM schedule."""
    return Schedule.linear(DiffusionConfig())


@pytest.fixture(scope="module")
def prior(schedule):
    """The random prior with covariance ×0.25 and mean ×0.5, so samples stay inside [-1, 1] and the final clamp
    of `run_baseline` does not bias the comparison with the exact posterior."""
    base = GaussianPrior.random(SHAPE, schedule)
    return GaussianPrior(base.mean * 0.5, base.cov * 0.25, SHAPE, schedule)


@pytest.fixture(scope="module")
def matrix():
    """A random 8×16 measurement matrix."""
    return torch.randn(8, 16, generator=torch.Generator().manual_seed(1)) / 4  # singular values 0.44 … 1.5


def _measure(prior, op, n, seed=2):
    """n ground truths from the prior and their measurements (per-image noise seeds)."""
    x0 = prior.sample(n, torch.Generator().manual_seed(seed))
    return x0, op.measure(x0, [torch.Generator().manual_seed(100 + i) for i in range(n)])


def _run(name, prior, schedule, op, y, seeds, **changes):
    """`run_baseline` with the fast test settings of `name`, updated by `changes`."""
    config = config_for(name, **{**FAST[name], **changes})
    return run_baseline(name, prior, schedule, op, y, SampleNoise(seeds), config)


def test_the_light_names_are_the_registry_s_in_its_order():
    assert BASELINE_NAMES == tuple(BASELINES)  # the CLIs offer them without importing the samplers


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_each_image_depends_only_on_its_seed(name, prior, schedule, matrix):
    op = DenseLinear(matrix, SHAPE, sigma_y=SIGMA_Y)
    _, y = _measure(prior, op, 4)
    seeds = [10, 11, 12, 13]
    batch, _ = _run(name, prior, schedule, op, y, seeds)
    again, _ = _run(name, prior, schedule, op, y, seeds)
    assert torch.equal(batch, again)
    for k in range(4):
        alone, _ = _run(name, prior, schedule, op, y[k:k + 1], [seeds[k]])
        assert torch.allclose(alone[0], batch[k], atol=1e-6, rtol=0), (name, k)
    other_seed, _ = _run(name, prior, schedule, op, y[:1], [99])
    assert not torch.allclose(other_seed[0], batch[0], atol=1e-3)


# Measured error ratios (mean-of-32-samples to posterior mean, over prior mean to posterior mean) on this toy:
# exact posterior samples 0.10, DPS 0.27, ΠGDM 0.14 (noisy form; 0.29 in the official pinv form, which ignores
# σ_y), DDRM 0.49, DDNM+ 0.22, RED-diff 0.29. Bounds leave room.
# - DPS: w·∇‖r‖ has a fixed length whatever the image size, so ImageNet's w (0.5 over 196,608 pixels) overshoots
#   on 16 pixels (ratio ≈ 1.9); w = 0.02 is the toy's equivalent.
# - DDRM with its 20 steps jumps from σ = 0.18 (t = 50) to 0.01 (t = 0), below σ_y/s_i, and there keeps x̂0
#   estimated from x_50, whose measured part had noise added on top of ȳ; 100 steps give 0.32.
# - RED-diff's loss has no σ_y: it fits y's noise (‖Ax − y‖ ≈ 0.02 against the posterior's ≈ 0.14); at
#   σ_y = 0.05 it is no better than the prior mean, which is why RED-diff runs λ = 1.0 for noisy inpainting.
#   It is a point estimate: its seed-to-seed spread is Adam's jitter, so only the samplers' spread is checked.
QUALITY = [("dps", {"scale": 0.02}, 0.4), ("pigdm", {"form": "noisy"}, 0.3), ("pigdm", {}, 0.4), ("ddrm", {}, 0.65),
           ("ddnm", {}, 0.4), ("reddiff", {}, 0.45)]


@pytest.mark.parametrize("name, changes, bound", QUALITY)
def test_sample_mean_approaches_exact_posterior_mean(name, changes, bound, prior, schedule, matrix):
    op = DenseLinear(matrix, SHAPE, sigma_y=SIGMA_Y)
    truths, repeats = 4, 32
    _, y = _measure(prior, op, truths)
    post_mean, post_cov = prior.posterior(op, y)
    x, _ = run_baseline(name, prior, schedule, op, y.repeat_interleave(repeats, 0),
                        SampleNoise(list(range(truths * repeats))), config_for(name, **changes))
    samples = x.flatten(1).double().view(truths, repeats, -1)
    error = (samples.mean(1) - post_mean).norm(dim=1).sum()
    prior_error = (prior.mean - post_mean).norm(dim=1).sum()
    assert error < bound * prior_error, (name, (error / prior_error).item())
    spread = samples.var(1).sum(1).mean() / post_cov.trace()  # seed-to-seed variance over the posterior's
    assert name == "reddiff" or 0.3 < spread < 1.5, (name, spread.item())


@pytest.mark.parametrize("name, changes", [("ddrm", {"threshold": "inclusive"}), ("ddnm", {})])
def test_noiseless_ddrm_and_ddnm_reproduce_y(name, changes, prior, schedule, matrix):
    """DDRM's official strict threshold keeps x̂0 at the last step (tests/deft/baselines); ≥ projects onto y."""
    op = DenseLinear(matrix, SHAPE, sigma_y=0.0)
    x0, y = _measure(prior, op, 6)
    x, _ = run_baseline(name, prior, schedule, op, y, SampleNoise(list(range(6))), config_for(name, **changes))
    assert (x.abs() < 1).all()  # nothing clamped, so consistency is the sampler's own
    assert (op(x) - y).norm(dim=1).max() < 1e-4
    assert (x - x0).norm() > 1e-2  # the unmeasured directions come from the prior, not from the truth


def test_supports_and_clear_errors(prior, schedule, matrix):
    dense, plain = DenseLinear(matrix, SHAPE, SIGMA_Y), PlainLinear(matrix, SIGMA_Y)
    clip, clip_pinv, noisy_clip_pinv = ClipOp(), HalfPinvClip(), HalfPinvClip(sigma_y=0.05)
    assert all(supports(name, dense) for name in BASELINES)
    assert [supports(name, plain) for name in ("ddrm", "ddnm", "pigdm", "dps", "reddiff")] == [False, False, True,
                                                                                                True, True]
    assert [supports(name, clip) for name in ("ddrm", "ddnm", "pigdm", "dps", "reddiff")] == [False, False, False,
                                                                                               True, True]
    assert supports("pigdm", clip_pinv) and not supports("pigdm", noisy_clip_pinv)
    y = plain(torch.zeros(1, *SHAPE))
    with pytest.raises(ValueError, match=r"DDRM needs an SVD.*'plain' \(PlainLinear\)"):
        run_baseline("ddrm", prior, schedule, plain, y, SampleNoise([0]))
    with pytest.raises(ValueError, match="DDNM needs a linear operator with a pseudo-inverse; operator 'clip'"):
        run_baseline("ddnm", prior, schedule, clip, y, SampleNoise([0]))
    with pytest.raises(ValueError, match="unknown baseline 'dsp'"):
        run_baseline("dsp", prior, schedule, dense, y, SampleNoise([0]))
    with pytest.raises(TypeError, match="DPSConfig"):
        run_baseline("dps", prior, schedule, dense, y, SampleNoise([0]), DDRMConfig())
    with pytest.raises(ValueError, match="2 seeds but y has 1 rows"):
        run_baseline("dps", prior, schedule, dense, y, SampleNoise([0, 1]))


def test_task_settings():
    assert config_for("dps", "hdr") == DPSConfig(steps=1000, eta=0.5, scale=0.1)
    assert config_for("dps", "phase_retrieval", steps=10) == DPSConfig(steps=10, eta=1.0, scale=0.4)
    assert config_for("reddiff", "inpaint").lr == 0.25 and config_for("reddiff", "nonlinear_deblur").lr == 0.5
    assert config_for("reddiff") == RedDiffConfig(steps=1000, lr=0.1, lam=0.25, obs_weight=1.0)
    assert config_for("ddrm", "sr4") == DDRMConfig(steps=20, eta=0.85, eta_b=1.0)
    with pytest.raises(ValueError, match="unknown task 'inpainting'"):
        config_for("dps", "inpainting")


@pytest.mark.parametrize("name, steps, vjps", [("dps", 1000, 1000), ("dps", 7, 7), ("pigdm", 9, 9), ("ddrm", 5, 0),
                                               ("ddnm", 6, 0), ("reddiff", 8, 0)])
def test_stats_count_network_evaluations(name, steps, vjps, prior, schedule, matrix):
    op = DenseLinear(matrix, SHAPE, sigma_y=SIGMA_Y)
    _, y = _measure(prior, op, 3)
    _, stats = run_baseline(name, prior, schedule, op, y, SampleNoise([0, 1, 2]), config_for(name, steps=steps))
    assert stats == {"nfe_per_image": steps, "backbone_vjps_per_image": vjps, "steps": steps}


def test_default_steps():
    assert [config_for(name).steps for name in ("dps", "pigdm", "ddrm", "ddnm", "reddiff")] == [1000, 100, 20, 100,
                                                                                                1000]


def test_reddiff_image_ignores_its_batch_neighbours(prior, schedule, matrix):
    op = DenseLinear(matrix, SHAPE, sigma_y=SIGMA_Y)
    _, y = _measure(prior, op, 5)
    first, _ = _run("reddiff", prior, schedule, op, y[[0, 1, 2]], [7, 8, 9])
    moved, _ = _run("reddiff", prior, schedule, op, y[[3, 4, 0]], [5, 6, 7])
    assert torch.allclose(first[0], moved[2], atol=1e-6, rtol=0)


def test_pigdm_direction_cg_and_pinv_match_svd(prior, matrix):
    x0 = prior.sample(3, torch.Generator().manual_seed(4))
    y = DenseLinear(matrix, SHAPE)(prior.sample(3, torch.Generator().manual_seed(5)))
    for sigma_y in (0.0, SIGMA_Y):
        exact = pigdm_vector(DenseLinear(matrix, SHAPE, sigma_y), y, x0, 0.3, 50, noisy=True)
        solved = pigdm_vector(PlainLinear(matrix, sigma_y), y, x0, 0.3, 50, noisy=True)
        assert torch.allclose(solved, exact, atol=1e-4), sigma_y
    noiseless = DenseLinear(matrix, SHAPE)
    assert torch.allclose(pigdm_vector(noiseless, y, x0, 0.3, 50, noisy=True), noiseless.pinv(y - noiseless(x0)),
                          atol=1e-5)


def test_pigdm_pinv_form_amplifies_blur_noise_where_the_noisy_form_does_not():
    # docs/deft.md, row 12: on the DDRM blur (1-D singular values >= 0.03, so 2-D ones down to ~1e-3) the official
    # pinv form passes the measurement noise on divided by s; the noisy form weighs it by r²s/(r²s² + σ²) instead.
    from deft.operators.linear import deblur_gauss

    op = deblur_gauss(32, sigma_y=SIGMA_Y)
    kept = op.singulars()[op.singulars() > 0]
    assert 5e-4 < kept.min() < 0.03 ** 2 * 2  # products of two 1-D values, each at least the 0.03 threshold
    noise = op.noise_std * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    zero = torch.zeros(2, 3, 32, 32)  # x̂0 = 0 and y = noise: v is the noise as each form passes it on
    pinv = pigdm_vector(op, noise, zero, 0.5, 50, noisy=False)
    weighed = pigdm_vector(op, noise, zero, 0.5, 50, noisy=True)
    assert pinv.norm() > 30 * noise.norm()  # the noise blown up by 1/s (about 60× here)
    assert weighed.norm() < 10 * noise.norm()  # bounded: the gain r²s/(r²s² + σ²) is at most r/(2σ) (about 5× here)


@pytest.mark.parametrize("name", ["dps", "reddiff"])
def test_nonlinear_operator_runs(name, prior, schedule):
    op = ClipOp()
    x0 = prior.sample(4, torch.Generator().manual_seed(6))
    y = op(x0)
    x, stats = _run(name, prior, schedule, op, y, [0, 1, 2, 3], steps=200)
    assert torch.isfinite(x).all() and x.shape == (4, *SHAPE)
    assert op.residual_norm_sq(x, y).mean() < 0.5 * op.residual_norm_sq(prior.mean.float().view(1, *SHAPE), y).mean()
    assert stats["backbone_vjps_per_image"] == (200 if name == "dps" else 0)


def test_frozen_unet_backbone_gets_no_weight_gradients(schedule):
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1,
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=4)
    eps_model = FrozenEps(unet, chunk=2)
    op = DenseLinear(torch.randn(16, 192, generator=torch.Generator().manual_seed(3)) / 8, (3, 8, 8), SIGMA_Y)
    y = op(torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(4)) * 2 - 1)
    for name in sorted(BASELINES):
        x, stats = run_baseline(name, eps_model, schedule, op, y, SampleNoise([0, 1, 2]), config_for(name, steps=4))
        alone, _ = run_baseline(name, eps_model, schedule, op, y[2:], SampleNoise([2]), config_for(name, steps=4))
        assert torch.allclose(alone[0], x[2], atol=1e-6, rtol=0), name
        vjps = 4 if name in ("dps", "pigdm") else 0
        assert stats == {"nfe_per_image": 4, "backbone_vjps_per_image": vjps, "steps": 4}, name
    assert all(p.grad is None for p in unet.parameters())
