"""The one ᾱ-table schedule of every diffusion in the suite: training tables, timestep spacings and DDIM steps.

A `Schedule` is built from a float64 beta table: DiT's linear betas (`Schedule.linear`, also DEFT's backbone and
the inverse-problem baselines) or any other table (the protein prior's cosine betas). ᾱ_t = ∏_{i≤t} (1 − β_i),
with DiT indexing: t = 0 is the least noisy step.

Timestep spacings: 'leading' (DEFT, RED-diff, diffusers `timestep_spacing="leading"`) visits T − T/N, …, T/N, 0
(990, 980, …, 0 for N = 100 over T = 1000); 'respaced' is DiT/guided-diffusion's `space_timesteps(T, "N")`. The
last DDIM step jumps to ᾱ = 1, i.e. returns x̂0 (DEFT `algos/ddim.py`; diffusers `DDIMScheduler(
set_alpha_to_one=True, clip_sample=False)`). A step from t to s < t (DEFT `algos/ddim.py`, `DDIM.sample`):

    c1 = η·sqrt((1 − ᾱ_t/ᾱ_s)(1 − ᾱ_s)/(1 − ᾱ_t)),  c2 = sqrt(1 − ᾱ_s − c1²),
    x_s = sqrt(ᾱ_s)·x̂0 + c1·z + c2·ε.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tunebench.config import DiffusionConfig


def leading_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """Descending timesteps with 'leading' spacing: range(0, T, T // N) reversed."""
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be in [1, {num_train_timesteps}], got {steps}")
    stride = num_train_timesteps // steps
    return list(range(0, stride * steps, stride))[::-1]


def respaced_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """DiT's `space_timesteps(T, "N")` for one section: round(linspace(0, T-1, N)), in descending order."""
    stride = (num_train_timesteps - 1) / max(steps - 1, 1)
    kept, position = [], 0.0
    for _ in range(steps):  # accumulate the stride exactly as DiT does, so rounding ties land on the same steps
        kept.append(round(position))
        position += stride
    return sorted(set(kept), reverse=True)


def quadratic_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """Quadratic spacing, int(linspace(0, sqrt(t_max), N)²) descending, so steps crowd at low noise; duplicates at the
    low end are dropped. t_max = (T // N)·(N − 1) is the first timestep of 'leading' spacing (980 for 50 of 1000).

    DDIM's 'quad' skip type (Song et al. 2021, App. D.2; ermongroup/ddim `runners/diffusion.py`, `sample_image`) is
    the same with t_max = 0.8·T: on a cosine schedule (ᾱ = 0.09 at t = 800 of 1000) that would start from noise that
    should still hold 0.3 of the data. Nor is it T − 1: where the clipped cosine schedule leaves ᾱ ≈ 2·10⁻⁹, the
    first step multiplies any error in ε by sqrt(ᾱ_s/ᾱ_t), about 1300 for the next quadratic step, which blew the
    protein DEFT heads' scaffolds apart; from 'leading's first timestep it is about 3."""
    last = leading_timesteps(num_train_timesteps, steps)[0] ** 0.5  # checks steps too
    # The 1e-9 keeps float round-off (sqrt(980)² = 979.99…) from truncating a whole step away.
    kept = {int((last * i / max(steps - 1, 1)) ** 2 + 1e-9) for i in range(steps)}
    return sorted(kept, reverse=True)


SPACINGS = {"leading": leading_timesteps, "respaced": respaced_timesteps, "quadratic": quadratic_timesteps}


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
    """A DDPM schedule's float64 tables (β, ᾱ, ᾱ of the previous step) and the DDIM steps over them."""

    def __init__(self, betas: torch.Tensor):
        """Precompute ᾱ in float64 from the betas of t = 0..T−1."""
        self.betas = betas.double()
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])
        self.num_train_timesteps = len(self.betas)

    @classmethod
    def linear(cls, diffusion: DiffusionConfig) -> Schedule:
        """DiT's linear-beta schedule (also DEFT's backbone and the inverse-problem baselines)."""
        return cls(torch.linspace(diffusion.beta_start, diffusion.beta_end, diffusion.num_train_timesteps,
                                  dtype=torch.float64))

    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        """ᾱ_t (float64, on the CPU where the table lives; callers move it to their device)."""
        return self.alphas_cumprod[torch.as_tensor(t, dtype=torch.long).cpu()]

    def steps(self, num_steps: int, spacing: str = "leading") -> list[Step]:
        """The DDIM steps over `num_steps` timesteps of `spacing` ('leading' or 'respaced'), ending at ᾱ = 1."""
        ts = SPACINGS[spacing](self.num_train_timesteps, num_steps)
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


def ddim_update(step: Step, x0: torch.Tensor, eps: torch.Tensor, eta: float,
                noise: torch.Tensor | None) -> torch.Tensor:
    """x_s = sqrt(ᾱ_s)·x̂0 + c1·z + c2·ε (z = `noise`, needed only when c1 > 0)."""
    c1, c2 = step.coefficients(eta)
    out = step.abar_s ** 0.5 * x0 + c2 * eps
    return out + c1 * noise if c1 > 0 else out
