"""DDIM on the DDPM schedule as DEFT, RED-diff and their baselines run it: 'leading' timesteps, no x̂0 clipping.

With N steps over T = 1000 the visited timesteps are T − T/N, …, T/N, 0 (990, 980, …, 0 for N = 100), and the last
step jumps to ᾱ = 1, i.e. returns x̂0 (DEFT `algos/ddim.py`; diffusers `DDIMScheduler(timestep_spacing="leading",
set_alpha_to_one=True, clip_sample=False)`). A step from t to s < t (DEFT `algos/ddim.py`, `DDIM.sample`):

    c1 = η·sqrt((1 − ᾱ_t/ᾱ_s)(1 − ᾱ_s)/(1 − ᾱ_t)),  c2 = sqrt(1 − ᾱ_s − c1²),
    x_s = sqrt(ᾱ_s)·x̂0 + c1·z + c2·ε.

Every sample owns a CPU generator seeded by its seed (`SampleNoise`), so sample k depends only on seed k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunebench.config import DiffusionConfig
from tunebench.diffusion import GaussianDiffusion


def leading_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """Descending timesteps with 'leading' spacing: range(0, T, T // N) reversed."""
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be in [1, {num_train_timesteps}], got {steps}")
    stride = num_train_timesteps // steps
    return list(range(0, stride * steps, stride))[::-1]


@dataclass(frozen=True)
class Step:
    """One reverse step from timestep t (ᾱ_t) to the next visited timestep s (ᾱ_s; ᾱ = 1 after the last)."""

    t: int
    s: int  # −1 after the last step
    abar_t: float
    abar_s: float

    def coefficients(self, eta: float) -> tuple[float, float]:
        """(c1, c2): weights of fresh noise and of ε in the DDIM update."""
        if self.abar_s >= 1.0:
            return 0.0, 0.0
        c1 = eta * ((1 - self.abar_t / self.abar_s) * (1 - self.abar_s) / (1 - self.abar_t)) ** 0.5
        return c1, max(1 - self.abar_s - c1 ** 2, 0.0) ** 0.5

    @property
    def sigma_t(self) -> float:
        """VE noise level sqrt(1 − ᾱ_t)/sqrt(ᾱ_t) at t."""
        return ((1 - self.abar_t) / self.abar_t) ** 0.5


class Schedule:
    """ᾱ table of a DDPM schedule (linear-beta unless given) and the DDIM steps over it."""

    def __init__(self, diffusion: DiffusionConfig | None = None, alphas_cumprod: torch.Tensor | None = None):
        """Precompute ᾱ in float64 (the same table training uses): the linear-beta table of `diffusion`, or any
        given float64 table (e.g. the protein prior's cosine schedule)."""
        if (diffusion is None) == (alphas_cumprod is None):
            raise ValueError("give exactly one of `diffusion` and `alphas_cumprod`")
        self.alphas_cumprod = (GaussianDiffusion(diffusion).alphas_cumprod if alphas_cumprod is None
                               else alphas_cumprod.double())
        self.num_train_timesteps = len(self.alphas_cumprod)

    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        """ᾱ_t (float64, on the CPU where the table lives; callers move it to their device)."""
        return self.alphas_cumprod[torch.as_tensor(t, dtype=torch.long).cpu()]

    def steps(self, num_steps: int) -> list[Step]:
        """The DDIM steps for `num_steps` leading timesteps, ending at ᾱ = 1."""
        ts = leading_timesteps(self.num_train_timesteps, num_steps)
        nexts = ts[1:] + [-1]
        return [Step(t, s, float(self.alphas_cumprod[t]), 1.0 if s < 0 else float(self.alphas_cumprod[s]))
                for t, s in zip(ts, nexts)]

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """sqrt(ᾱ_t)·x0 + sqrt(1 − ᾱ_t)·ε, per-sample t."""
        abar = self.abar(t).to(x0.dtype).view(-1, *([1] * (x0.ndim - 1))).to(x0.device)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Tweedie x̂0 = (x_t − sqrt(1 − ᾱ_t)·ε)/sqrt(ᾱ_t), per-sample t, no clipping."""
        abar = self.abar(t).to(xt.dtype).view(-1, *([1] * (xt.ndim - 1))).to(xt.device)
        return (xt - (1 - abar).sqrt() * eps) / abar.sqrt()


def ddim_update(step: Step, x0: torch.Tensor, eps: torch.Tensor, eta: float, noise: torch.Tensor | None) -> torch.Tensor:
    """x_s = sqrt(ᾱ_s)·x̂0 + c1·z + c2·ε (z = `noise`, needed only when c1 > 0)."""
    c1, c2 = step.coefficients(eta)
    out = step.abar_s ** 0.5 * x0 + c2 * eps
    return out + c1 * noise if c1 > 0 else out


class SampleNoise:
    """Per-sample noise streams: row i draws from its own generator seeded by seeds[i]."""

    def __init__(self, seeds: list[int], device: torch.device | str = "cpu"):
        """One CPU generator per seed (CPU generators give the same numbers on every device)."""
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.device = device

    def randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A len(seeds)×shape standard normal tensor, row i from generator i."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators]).to(self.device)

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.generators)
