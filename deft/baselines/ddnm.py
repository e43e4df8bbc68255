"""DDNM / DDNM+ (Wang et al. 2023), without time travel: its settings and sampler.

DDNM's η is DDNM's own (the fresh-noise share of sqrt(1 − ᾱ_s)), not `tunebench.schedule`'s DDIM η. DDNM+ uses
a = sqrt(ᾱ_s), σ = sqrt(1 − ᾱ_s) in λ_t, γ_t (the SVD code's choice; the simplified script uses ᾱ_s and
sqrt(1 − ᾱ_s²)), and x_s = a·x̂0′ + γ_t·(ηz + sqrt(1 − η²)ε).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deft.baselines.common import has_pinv, image_shape, step_bar, timesteps_like, tweedie_x0
from deft.operators.base import Operator
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule

LABEL = "DDNM"


@dataclass(frozen=True)
class DDNMConfig:
    """DDNM / DDNM+ (Wang et al. 2023), without time travel."""

    steps: int = 100  # DDNM `T_sampling`
    eta: float = 0.85  # DDNM `svd_ddnm.py` / simplified script


TASK_SETTINGS: dict[str, dict] = {}  # DDNM's settings for every task
RUN_COMMANDS: dict[str, dict] = {}  # DEFT's `run_commands.md` has no DDNM command


def unsupported_reason(op: Operator) -> str | None:
    """Why DDNM cannot run on `op` (it needs a linear operator with A†), or None."""
    if op.linear and has_pinv(op):
        return None
    return f"DDNM needs a linear operator with a pseudo-inverse; operator '{op.name}' ({type(op).__name__}) is not one"


@torch.no_grad()
def sample(eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
           config: DDNMConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """DDNM (σ_y = 0) and the scalar DDNM+ (σ_y > 0) with DDNM's DDIM step, from pure noise.

    x̂0′ = x̂0 − λ_t·A†(A x̂0 − y) (= A†y + (I − A†A)x̂0 for λ_t = 1), x_s = a·x̂0′ + γ_t·(ηz + sqrt(1−η²)ε) with
    a = sqrt(ᾱ_s), σ = sqrt(1 − ᾱ_s): λ_t = 1, γ_t = sqrt(σ² − (aσ_y)²) if σ ≥ aσ_y, else λ_t = σ/(aσ_y), γ_t = 0.
    """
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    eta, sigma_y = config.eta, op.noise_std
    x = noise.randn(shape)
    for step in step_bar(steps, LABEL, progress):
        eps = eps_model(x, timesteps_like(step.t, x))
        x0 = tweedie_x0(x, eps, step.abar_t)
        a, sigma = step.abar_s ** 0.5, (1 - step.abar_s) ** 0.5
        if sigma >= a * sigma_y:
            lam, gamma = 1.0, (sigma ** 2 - (a * sigma_y) ** 2) ** 0.5
        else:
            lam, gamma = sigma / (a * sigma_y), 0.0
        x0 = x0 - lam * op.pinv(op(x0) - y)
        x = a * x0
        if gamma > 0:
            z = noise.randn(shape) if eta > 0 else torch.zeros_like(x)
            x = x + gamma * (eta * z + (1 - eta ** 2) ** 0.5 * eps)
    return x, 0
