"""The baselines' official behaviours (alexdenker/DEFT `algos/{ddrm,pgdm,reddiff}.py`, DDRM's `denoising.py`) on
small tensors, and the `baselines` switches that select the alternatives."""

import pytest
import torch

from deft.baselines import DDRMConfig, DPSConfig, PiGDMConfig, RedDiffConfig, configured, ddrm, pigdm, reddiff
from deft.baselines.common import start_estimate
from deft.baselines.pigdm import HDR_CONTRAST, pigdm_vector
from deft.config import BaselineSettings, DeftConfig
from deft.operators.base import DenseLinear
from deft.operators.linear import Inpainting
from deft.operators.nonlinear import HDR, PhaseRetrieval, centred_ifft
from deft.operators.task_settings import TaskConfig
from deft.operators.tasks import build_operator
from tunebench.config import ConfigError, DiffusionConfig, resolve
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule

SHAPE = (1, 4, 4)


class ZeroEps:
    """An ε-model that predicts 0 everywhere and remembers its last input (x̂0 = x_t/sqrt(ᾱ_t) in closed form)."""

    def __init__(self, shape=SHAPE):
        """Images of `shape` (C, H, W)."""
        self.channels, self.sample_size = shape[0], shape[-1]
        self.evaluations, self.last = 0, None

    def __call__(self, x, t):
        """0, after recording x."""
        self.evaluations += x.shape[0]
        self.last = x.detach().clone()
        return torch.zeros_like(x)


@pytest.fixture(scope="module")
def schedule():
    """The linear-β 1000-step DDPM schedule."""
    return Schedule.linear(DiffusionConfig())


def rand(*shape, seed):
    """Uniform [-1, 1] float32 values."""
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


#################################################################################
#                          DDRM: the strict threshold                           #
#################################################################################


def test_ddrm_strict_last_step_keeps_x0hat_and_inclusive_reproduces_y(schedule):
    op = DenseLinear(torch.randn(8, 16, generator=torch.Generator().manual_seed(1)) / 4, SHAPE)  # noiseless
    y = op(rand(2, *SHAPE, seed=2))
    last = schedule.steps(3)[-1]
    model = ZeroEps()
    strict, _ = ddrm.sample(model, schedule, op, y, SampleNoise([0, 1]), DDRMConfig(steps=3))
    x0hat = model.last / last.abar_t ** 0.5  # the last step's Tweedie estimate
    assert torch.allclose(strict, x0hat, atol=1e-5)  # s·0 > 0 is false: no measured component is set to ȳ
    assert float((op(strict) - y).norm()) > 1e-2  # measured: 0.03
    inclusive, _ = ddrm.sample(ZeroEps(), schedule, op, y, SampleNoise([0, 1]),
                               DDRMConfig(steps=3, threshold="inclusive"))
    assert torch.allclose(op(inclusive), y, atol=1e-5)


#################################################################################
#                       ΠGDM: the pseudo-inverse form                           #
#################################################################################


def test_pigdm_pinv_form_ignores_the_noise_and_the_noisy_form_does_not():
    matrix = torch.randn(8, 16, generator=torch.Generator().manual_seed(3)) / 4
    op = DenseLinear(matrix, SHAPE, sigma_y=0.1)
    x0, y = rand(2, *SHAPE, seed=4), torch.randn(2, 8, generator=torch.Generator().manual_seed(5))
    pinv = pigdm_vector(op, y, x0, 0.3, 50, noisy=False)
    assert torch.allclose(pinv, op.pinv(y - op(x0)), atol=1e-5)
    noisy = pigdm_vector(op, y, x0, 0.3, 50, noisy=True)
    assert not torch.allclose(noisy, pinv, atol=1e-2)


def inpainting_problem():
    """A 4×4 noisy inpainting problem with holes, its y (noise everywhere, as DEFT measures) and its mask."""
    mask = torch.ones(2, 1, 4, 4)
    mask[:, :, 1:3, 1:3] = 0
    op = Inpainting(mask, sigma_y=0.05)
    return op, op.measure(rand(2, *SHAPE, seed=6), [torch.Generator().manual_seed(k) for k in range(2)]), mask


def test_pigdm_pinv_form_writes_y_into_the_measured_pixels(schedule):
    op, y, mask = inpainting_problem()
    kept = mask.expand(2, *SHAPE).bool()
    official, _ = pigdm.sample(ZeroEps(), schedule, op, y, SampleNoise([0, 1]), PiGDMConfig(steps=2, eta=0.0))
    assert torch.allclose(official[kept], y[kept], atol=1e-6)  # RED-diff's `in2` replacement at the last step
    noisy, _ = pigdm.sample(ZeroEps(), schedule, op, y, SampleNoise([0, 1]),
                            PiGDMConfig(steps=2, eta=0.0, form="noisy"))
    assert float((noisy[kept] - y[kept]).abs().max()) > 1e-3


def test_pigdm_pinv_form_adds_the_hdr_contrast_term(schedule):
    op = HDR()  # noiseless, as ΠGDM needs for an operator without an SVD
    y = op(0.4 * rand(2, *SHAPE, seed=7))
    model = ZeroEps()
    official, _ = pigdm.sample(model, schedule, op, y, SampleNoise([0, 1]), PiGDMConfig(steps=1, eta=0.0))
    xt = model.last
    noisy, _ = pigdm.sample(ZeroEps(), schedule, op, y, SampleNoise([0, 1]),
                            PiGDMConfig(steps=1, eta=0.0, form="noisy"))
    # σ_y = 0: both forms share v; the difference is w·sqrt(ᾱ_s ᾱ_t)·∇_{x_t} 1500·std(x̂0), ᾱ_s = 1, x̂0 = x_t/sqrt(ᾱ_t)
    x0 = (xt / schedule.steps(1)[0].abar_t ** 0.5).flatten(1)
    centred = x0 - x0.mean(1, keepdim=True)
    expected = HDR_CONTRAST * centred / ((x0.shape[1] - 1) * x0.std(1, keepdim=True))
    assert torch.allclose((official - noisy).flatten(1), expected, atol=1e-3 * float(expected.abs().max()))


#################################################################################
#                      Start points without a pseudo-inverse                    #
#################################################################################


def test_official_start_is_h_pinv_where_a_has_no_pseudo_inverse():
    phase = PhaseRetrieval(8)
    y = phase(rand(2, 3, 8, 8, seed=8))
    assert torch.equal(start_estimate(phase, y, "official"), phase.rough_inverse(y))
    assert start_estimate(phase, y, "pinv_only") is None
    blur = build_operator(TaskConfig(operator="nonlinear_blur", sigma_y=0.0), torch.arange(2), 16, 3)
    y_blur = blur(rand(2, 3, 16, 16, seed=9))
    assert torch.equal(start_estimate(blur, y_blur, "official"), blur(y_blur))
    op, y_inp, _ = inpainting_problem()
    assert torch.equal(start_estimate(op, y_inp, "official"), op.pinv(y_inp))  # A† where there is one


@pytest.mark.parametrize("start", ["official", "pinv_only"])
def test_reddiff_starts_from_the_estimate(start, schedule):
    phase = PhaseRetrieval(8)
    y = phase(rand(2, 3, 8, 8, seed=10))
    frozen = RedDiffConfig(steps=1, lr=0.0, start=start)  # lr 0: μ stays where it starts
    mu, _ = reddiff.sample(ZeroEps((3, 8, 8)), schedule, phase, y, SampleNoise([0, 1]), frozen)
    pad = phase.pad
    expected = 2 * centred_ifft(y).abs()[..., pad:-pad, pad:-pad] - 1  # |F⁻¹y| mapped from (x + 1)/2 units
    assert torch.allclose(mu, expected if start == "official" else torch.zeros_like(mu), atol=1e-5)


#################################################################################
#                               The config section                              #
#################################################################################


def test_the_switches_reach_the_method_configs():
    paper = BaselineSettings()
    assert configured("reddiff", "sr4", paper).steps == 1000
    assert configured("reddiff", "sr4", BaselineSettings(protocol="run_commands")).steps == 100
    assert configured("reddiff", "hdr", BaselineSettings(protocol="run_commands")).steps == 1000
    assert configured("reddiff", "sr4", BaselineSettings(protocol="run_commands", steps=5)).steps == 5
    assert configured("pigdm", "inpaint", paper) == PiGDMConfig(form="pinv", start="official")
    assert configured("pigdm", "inpaint", BaselineSettings(pigdm_form="noisy", start="pinv_only")) == PiGDMConfig(
        form="noisy", start="pinv_only")
    assert configured("ddrm", "inpaint_box", BaselineSettings(ddrm_threshold="inclusive")).threshold == "inclusive"
    assert configured("dps", "phase_retrieval", BaselineSettings(start="pinv_only")) == DPSConfig(
        eta=1.0, scale=0.4, start="pinv_only")


def test_bad_switch_values_name_the_key():
    with pytest.raises(ConfigError, match="config key 'baselines.pigdm_form' is 'exact'; choose one of pinv, noisy"):
        resolve("smoke", {"baselines": {"pigdm_form": "exact"}}, cls=DeftConfig)
    with pytest.raises(ValueError, match="baselines.ddrm_threshold is '>'"):
        DDRMConfig(threshold=">")
    with pytest.raises(ValueError, match="baselines.start is 'zeros'"):
        RedDiffConfig(start="zeros")
