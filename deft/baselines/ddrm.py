"""DDRM (Kawar et al. 2022): its settings and its spectral sampler.

DDRM trusts ȳ where s_i·σ_s > σ_y, strictly (bahjat-kawar/ddrm@32b6b3c `functions/denoising.py` lines 23 and 74-75;
DEFT's copy `algos/ddrm.py` lines 51 and 110-111): at the noiseless last step (σ_s = 0) with σ_y = 0 neither case
holds, so the measured components keep x̂0 and A x ≠ y. `threshold="inclusive"` (≥) sends them to ȳ there, so
noiseless runs reproduce y exactly. x_T = sqrt(ᾱ_T)·V x̄_T (DDRM's code divides x̄_T by σ_T instead, a factor
1/sqrt(1 − ᾱ_T) ≈ 1 + 5e-5 larger).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deft.baselines.common import check_choice, image_shape, step_bar, timesteps_like, tweedie_x0
from deft.operators.base import Operator, SVDOperator
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule

LABEL = "DDRM"


@dataclass(frozen=True)
class DDRMConfig:
    """DDRM (Kawar et al. 2022)."""

    steps: int = 20  # DDRM README, RED-diff `ddrm.yaml`
    eta: float = 0.85  # DDRM README (RED-diff's `sample_test.sh` runs 1.0)
    eta_b: float = 1.0  # DDRM README
    threshold: str = "strict"  # baselines.ddrm_threshold: trust ȳ where s·σ_s > σ_y (DDRM's code) or ≥

    def __post_init__(self):
        """Refuse an unknown threshold."""
        check_choice(self.threshold, "ddrm_threshold")


TASK_SETTINGS: dict[str, dict] = {}  # DDRM's README settings for every task
RUN_COMMANDS: dict[str, dict] = {}  # DEFT's `run_commands.md` has no DDRM command


def unsupported_reason(op: Operator) -> str | None:
    """Why DDRM cannot run on `op` (it needs an SVD), or None."""
    if isinstance(op, SVDOperator):
        return None
    return (f"DDRM needs an SVD (an SVDOperator with singulars/vt/v/ut/u); "
            f"operator '{op.name}' ({type(op).__name__}) has none")


@torch.no_grad()
def sample(eps_model, schedule: Schedule, op: SVDOperator, y: torch.Tensor, noise: SampleNoise,
           config: DDRMConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """DDRM's three-case spectral update in VE coordinates x̄ = Vᵀx/sqrt(ᾱ), then x_s = sqrt(ᾱ_s)·V x̄_s.

    Component i with singular value s_i, ȳ_i = (Uᵀy)_i/s_i and noise level σ_y/s_i; σ_s is the VE level at s:
    unmeasured (s_i = 0): x̄0 + sqrt(1−η²)σ_s ε̄ + ησ_s z; measured with s_iσ_s < σ_y: x̄0 + sqrt(1−η²)σ_s(ȳ − x̄0)
    s_i/σ_y + ησ_s z; measured with s_iσ_s ≥ σ_y: (1−η_b)x̄0 + η_b ȳ + sqrt(σ_s² − η_b²σ_y²/s_i²) z.
    """
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    eta, eta_b, sigma_y = config.eta, config.eta_b, op.noise_std
    s = op.singulars()
    measured = s > 0
    s_safe = torch.where(measured, s, torch.ones_like(s))
    y_bar = torch.where(measured, op.ut(y) / s_safe, torch.zeros_like(s))
    floor = sigma_y / s_safe  # noise std of ȳ_i (only read where measured)

    def trusts_y(sigma: float) -> torch.Tensor:
        """Where ȳ is no noisier than the level σ: s·σ > σ_y (strict) or ≥ (inclusive)."""
        level = s * sigma
        return measured & (level > sigma_y if config.threshold == "strict" else level >= sigma_y)

    # x_T as DDRM initialises it: ȳ plus the missing noise where y is no noisier than x_T, pure σ_T·z elsewhere.
    sigma_T = steps[0].sigma_t
    z = noise.randn(shape)
    trusted = trusts_y(sigma_T)
    x_bar = torch.where(trusted, y_bar + (sigma_T ** 2 - floor ** 2).clamp_min(0).sqrt() * z, sigma_T * z)
    x = steps[0].abar_t ** 0.5 * op.v(x_bar)
    for step in step_bar(steps, LABEL, progress):
        eps = eps_model(x, timesteps_like(step.t, x))
        x0_bar, eps_bar = op.vt(tweedie_x0(x, eps, step.abar_t)), op.vt(eps)
        sigma_s = ((1 - step.abar_s) / step.abar_s) ** 0.5  # 0 after the last step: every noise term vanishes
        z = noise.randn(shape) if sigma_s > 0 else torch.zeros_like(x0_bar)
        keep, fresh = (1 - eta ** 2) ** 0.5 * sigma_s, eta * sigma_s * z
        unmeasured = x0_bar + keep * eps_bar + fresh
        trusted = trusts_y(sigma_s)
        to_y = (1 - eta_b) * x0_bar + eta_b * y_bar + (sigma_s ** 2 - eta_b ** 2 * floor ** 2).clamp_min(0).sqrt() * z
        x_bar = torch.where(trusted, to_y, unmeasured)
        if sigma_y > 0:  # the middle case exists only with measurement noise; s·σ_s = σ_y (strict) is in neither
            noisy = measured & (s * sigma_s < sigma_y)
            x_bar = torch.where(noisy, x0_bar + keep * (y_bar - x0_bar) / floor + fresh, x_bar)
        x = step.abar_s ** 0.5 * op.v(x_bar)
    return x, 0
