"""Gaussian diffusion for training: q(x_t | x_0) and the hybrid ε-MSE + VLB loss on DiT's `Schedule`.

Sampling uses diffusers schedulers (see `sampling.py`); this module holds what diffusers lacks: the variational
bound term that trains DiT's learned variance (Nichol & Dhariwal 2021, "learned range" parametrisation).
"""

from __future__ import annotations

import math

import torch

from tunebench.config import DiffusionConfig
from tunebench.schedule import Schedule


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over all but the batch dimension."""
    return x.mean(dim=tuple(range(1, x.ndim)))


def normal_kl(mean1, logvar1, mean2, logvar2) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)), elementwise, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """Fast tanh approximation of the standard normal CDF (as in ADM, for the discretised decoder)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(x, means, log_scales) -> torch.Tensor:
    """Log-likelihood of 8-bit data in [-1, 1] under a Gaussian integrated over each 2/255-wide bin (nats)."""
    centered = x - means
    inv_std = torch.exp(-log_scales)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centered + 1.0 / 255.0))
    cdf_min = approx_standard_normal_cdf(inv_std * (centered - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))


class GaussianDiffusion:
    """DDPM with linear betas (float64 tables, DiT indexing: t = 0 is the least noisy step)."""

    def __init__(self, cfg: DiffusionConfig):
        """Precompute the posterior tables in float64 from the linear `Schedule`."""
        self.schedule = Schedule.linear(cfg)
        self.num_timesteps = self.schedule.num_train_timesteps
        betas, alphas_cumprod = self.schedule.betas, self.schedule.alphas_cumprod
        alphas_cumprod_prev = self.schedule.alphas_cumprod_prev
        self.betas = betas
        self.alphas_cumprod = alphas_cumprod
        self.posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        # The posterior variance is 0 at t = 0; ADM clips its log by reusing the t = 1 value.
        self.posterior_log_variance_clipped = torch.log(
            torch.cat([self.posterior_variance[1:2], self.posterior_variance[1:]]))
        self.posterior_mean_coef1 = betas * torch.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - alphas_cumprod_prev) * torch.sqrt(1.0 - betas) / (1.0 - alphas_cumprod)

    @staticmethod
    def _take(table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Gather table[t] and broadcast it to `like`'s shape and dtype."""
        values = table.to(t.device)[t].to(like.dtype)
        return values.view(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Diffuse clean data to step t: sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) ε."""
        return (self._take(self.alphas_cumprod.sqrt(), t, x0) * x0
                + self._take((1.0 - self.alphas_cumprod).sqrt(), t, x0) * noise)

    def q_posterior(self, x0, xt, t):
        """Mean and clipped log-variance of q(x_{t-1} | x_t, x_0)."""
        mean = self._take(self.posterior_mean_coef1, t, xt) * x0 + self._take(self.posterior_mean_coef2, t, xt) * xt
        return mean, self._take(self.posterior_log_variance_clipped, t, xt)

    def predict_x0(self, xt, t, eps):
        """x̂0 from x_t and a predicted ε."""
        return (self._take(torch.rsqrt(self.alphas_cumprod), t, xt) * xt
                - self._take(torch.sqrt(1.0 / self.alphas_cumprod - 1.0), t, xt) * eps)

    def p_mean_logvar(self, eps, var_values, xt, t):
        """Model mean and log-variance of p(x_{t-1} | x_t) with the learned-range variance parametrisation."""
        min_log = self._take(self.posterior_log_variance_clipped, t, xt)
        max_log = self._take(torch.log(self.betas), t, xt)
        frac = (var_values + 1.0) / 2.0
        logvar = frac * max_log + (1.0 - frac) * min_log
        mean, _ = self.q_posterior(self.predict_x0(xt, t, eps), xt, t)
        return mean, logvar

    def vlb_terms(self, eps, var_values, x0, xt, t) -> torch.Tensor:
        """Per-sample variational bound term in bits/dim: KL for t > 0, discretised decoder NLL at t = 0."""
        true_mean, true_logvar = self.q_posterior(x0, xt, t)
        mean, logvar = self.p_mean_logvar(eps, var_values, xt, t)
        kl = mean_flat(normal_kl(true_mean, true_logvar, mean, logvar)) / math.log(2.0)
        nll = -mean_flat(discretized_gaussian_log_likelihood(x0, mean, 0.5 * logvar)) / math.log(2.0)
        return torch.where(t == 0, nll, kl)

    def training_losses(self, model_output, x0, xt, t, noise) -> dict[str, torch.Tensor]:
        """DiT's per-sample loss: ε-MSE, plus the VLB for learned variance with the mean stopped (as in ADM/DiT).

        `model_output` has C channels (fixed variance) or 2C (ε then variance values in [-1, 1]).
        """
        channels = x0.shape[1]
        eps = model_output[:, :channels]
        mse = mean_flat((noise - eps) ** 2)
        if model_output.shape[1] == channels:
            return {"loss": mse, "mse": mse}
        var_values = model_output[:, channels:2 * channels]
        vb = self.vlb_terms(eps.detach(), var_values, x0, xt, t)
        return {"loss": mse + vb, "mse": mse, "vb": vb}

