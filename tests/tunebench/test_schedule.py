"""The core's ᾱ-table schedule, its timestep spacings and DDIM steps against diffusers' schedulers, and the
per-sample noise source."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor

from tunebench.config import SPACING_NAMES, DiffusionConfig, SampleConfig
from tunebench.diffusion import GaussianDiffusion
from tunebench.noise import SampleNoise
from tunebench.sampling import make_scheduler
from tunebench.schedule import (
    SPACINGS,
    Schedule,
    ddim_update,
    leading_timesteps,
    quadratic_timesteps,
    respaced_timesteps,
)


def _assert_ddim_matches(schedule: Schedule, reference: DDIMScheduler, num_steps: int):
    """Our DDIM steps visit diffusers' timesteps and give its update (η = 0 and 1) at the first, a middle and the
    last step."""
    reference.set_timesteps(num_steps)
    steps = schedule.steps(num_steps)
    assert [s.t for s in steps] == reference.timesteps.tolist()
    g = torch.Generator().manual_seed(0)
    x, eps, z = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))
    for step in (steps[0], steps[num_steps // 2], steps[-1]):
        for eta in (0.0, 1.0):
            t = torch.full((2,), step.t)
            ours = ddim_update(step, schedule.predict_x0(x, t, eps), eps, eta, z)
            theirs = reference.step(eps, step.t, x, eta=eta, variance_noise=z).prev_sample
            assert torch.allclose(ours, theirs, atol=1e-5), (step, eta)


def test_respacing_matches_dit_250_steps():
    kept = respaced_timesteps(1000, 250)
    assert len(kept) == 250 and kept[0] == 999 and kept[-1] == 0
    assert kept == sorted({round(x) for x in torch.linspace(0, 999, 250, dtype=torch.float64).tolist()},
                          reverse=True)
    assert respaced_timesteps(1000, 1000) == list(range(999, -1, -1))


def test_leading_timesteps_and_ddim_step_match_diffusers():
    assert leading_timesteps(1000, 100)[:3] == [990, 980, 970] and leading_timesteps(1000, 100)[-1] == 0
    reference = DDIMScheduler(beta_schedule="linear", clip_sample=False, set_alpha_to_one=True,
                              timestep_spacing="leading", steps_offset=0)
    _assert_ddim_matches(Schedule.linear(DiffusionConfig()), reference, 20)


def test_ddim_steps_match_diffusers_for_given_betas():
    """Any beta table (here a cosine one, as the protein prior's) gives diffusers' DDIM steps for the same betas."""
    f = torch.cos((torch.arange(1001, dtype=torch.float64) / 1000 + 0.008) / 1.008 * torch.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    reference = DDIMScheduler(trained_betas=betas.numpy(), clip_sample=False, set_alpha_to_one=True,
                              timestep_spacing="leading", steps_offset=0)
    _assert_ddim_matches(Schedule(betas), reference, 10)


def test_dit_schedulers_share_the_schedule_and_its_spacings():
    """diffusers builds DiT's sampling tables in float32 from the same linear betas (bit-identical samples forbid
    handing it our float64 table); the tables agree to float32 rounding and the DDPM steps are the 'respaced' ones."""
    schedule = Schedule.linear(DiffusionConfig())
    ddpm = make_scheduler(DiffusionConfig(), SampleConfig(steps=250), learn_sigma=True)
    ddim = make_scheduler(DiffusionConfig(), SampleConfig(sampler="ddim", steps=50), learn_sigma=True)
    for scheduler in (ddpm, ddim):
        assert torch.allclose(scheduler.alphas_cumprod.double(), schedule.alphas_cumprod, rtol=1e-5, atol=0)
    assert ddpm.timesteps.tolist() == [s.t for s in schedule.steps(250, "respaced")]
    assert ddim.timesteps.tolist() == [s.t for s in schedule.steps(50, "leading")]
    assert torch.equal(GaussianDiffusion(DiffusionConfig()).schedule.alphas_cumprod, schedule.alphas_cumprod)


def test_steps_end_at_abar_one_and_reject_bad_counts():
    steps = Schedule.linear(DiffusionConfig()).steps(4)
    assert [(s.t, s.s) for s in steps] == [(750, 500), (500, 250), (250, 0), (0, -1)]
    assert steps[-1].abar_s == 1.0 and steps[-1].coefficients(1.0) == (0.0, 0.0)
    with pytest.raises(ValueError, match="steps must be"):
        leading_timesteps(1000, 0)


def test_sample_noise_is_per_seed_and_matches_diffusers_generators():
    """Row k depends only on seed k, and equals diffusers' draw with one generator per seed (DiT sampling's)."""
    together = SampleNoise([3, 1, 4]).randn((2, 5))
    assert torch.equal(SampleNoise([1]).randn((2, 5))[0], together[1])
    diffusers_draw = randn_tensor((3, 2, 5), generator=SampleNoise([3, 1, 4]).generators)
    assert torch.equal(together, diffusers_draw)


def test_quadratic_spacing_is_ddims_quad_skip_type_from_the_first_leading_timestep():
    # ermongroup/ddim runners/diffusion.py: seq = [int(s) for s in np.linspace(0, np.sqrt(T * 0.8), N) ** 2]; here
    # the range ends at leading spacing's first timestep, (T // N)·(N − 1), instead of 0.8·T.
    expected = sorted({int(s + 1e-9) for s in np.linspace(0, np.sqrt(980), 50) ** 2}, reverse=True)
    steps = quadratic_timesteps(1000, 50)
    assert steps == expected and steps[0] == leading_timesteps(1000, 50)[0] == 980 and steps[-1] == 0
    assert len(steps) == 49  # two steps round to 0
    assert steps[-2] - steps[-1] < 5 < steps[0] - steps[1]  # crowded at low noise, sparse at high noise
    assert quadratic_timesteps(1000, 1000)[0] == 999
    assert set(SPACINGS) == set(SPACING_NAMES)
    with pytest.raises(ValueError, match="steps must be in"):
        quadratic_timesteps(1000, 0)
