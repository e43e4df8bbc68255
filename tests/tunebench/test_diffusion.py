"""Training-side diffusion math against diffusers and closed forms; scheduler settings for sampling."""

import torch
from diffusers import DDPMScheduler

from tunebench.config import DiffusionConfig, SampleConfig
from tunebench.diffusion import GaussianDiffusion
from tunebench.sampling import make_scheduler

DIFF = GaussianDiffusion(DiffusionConfig())


def test_q_sample_matches_diffusers_add_noise():
    scheduler = DDPMScheduler(beta_schedule="linear", beta_start=1e-4, beta_end=0.02)
    x0, noise = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    t = torch.tensor([0, 10, 500, 900, 999])
    assert torch.allclose(DIFF.q_sample(x0, t, noise), scheduler.add_noise(x0, noise, t), atol=1e-5)


def test_vlb_is_zero_for_the_true_posterior():
    """Predicting the true noise and the posterior variance (v = -1 → min_log) gives KL = 0 for t > 0."""
    x0, noise = torch.rand(4, 3, 8, 8) * 2 - 1, torch.randn(4, 3, 8, 8)
    t = torch.tensor([1, 5, 300, 999])
    xt = DIFF.q_sample(x0, t, noise)
    out = torch.cat([noise, -torch.ones_like(noise)], dim=1)
    losses = DIFF.training_losses(out, x0, xt, t, noise)
    assert torch.allclose(losses["vb"], torch.zeros(4), atol=1e-4)
    assert torch.allclose(losses["mse"], torch.zeros(4))
    wrong = DIFF.training_losses(torch.cat([noise, torch.ones_like(noise)], 1), x0, xt, t, noise)["vb"]
    assert (wrong[:2] > 1e-2).all()  # at large t, beta_t ≈ posterior variance, so the variance barely matters


def test_vlb_at_t0_is_decoder_nll_and_gradients_reach_only_variance():
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.zeros(2, dtype=torch.long)
    out = torch.cat([noise.clone(), torch.zeros_like(noise)], 1).requires_grad_(True)
    losses = DIFF.training_losses(out, x0, DIFF.q_sample(x0, t, noise), t, noise)
    assert (losses["vb"] > 0).all()
    losses["vb"].sum().backward()
    assert torch.count_nonzero(out.grad[:, :3]) == 0 and torch.count_nonzero(out.grad[:, 3:]) > 0


def test_ddpm_scheduler_step_matches_learned_range_posterior():
    """diffusers' learned_range step (no respacing) has our model mean and log-variance."""
    scheduler = make_scheduler(DiffusionConfig(), SampleConfig(steps=1000), learn_sigma=True)
    assert scheduler.config.clip_sample is False
    xt, eps, v = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4) * 2 - 1
    for step in (500, 20):
        t = torch.full((2,), step)
        mean, logvar = DIFF.p_mean_logvar(eps, v, xt, t)
        prev = scheduler.step(torch.cat([eps, v], 1), step, xt, generator=torch.Generator().manual_seed(0)).prev_sample
        z = torch.randn(xt.shape, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(prev, mean + torch.exp(0.5 * logvar) * z, atol=1e-4)


def test_ddim_scheduler_settings():
    scheduler = make_scheduler(DiffusionConfig(), SampleConfig(sampler="ddim", steps=100), learn_sigma=True)
    assert scheduler.config.clip_sample is False and scheduler.config.timestep_spacing == "leading"
    pixels = make_scheduler(DiffusionConfig(), SampleConfig(sampler="ddim", clip_x0=True), learn_sigma=True)
    assert pixels.config.clip_sample is True and pixels.config.clip_sample_range == 1.0
    assert scheduler.timesteps[0] == 990 and scheduler.timesteps[-1] == 0 and len(scheduler.timesteps) == 100
