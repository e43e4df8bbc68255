"""DPS (Chung et al. 2023) in RED-diff's DDIM form: its settings, per-task step sizes and sampler."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deft.baselines.common import (
    TINY,
    check_choice,
    ddim_noise,
    denoise_with_vjp,
    diffused_start,
    image_shape,
    step_bar,
)
from deft.operators.base import Operator
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule, ddim_update

LABEL = "DPS"


@dataclass(frozen=True)
class DPSConfig:
    """DPS (Chung et al. 2023) in RED-diff's DDIM form."""

    steps: int = 1000  # DEFT Tables 1/2/4 and RED-diff's `sample_batch.sh`: 1000 steps
    eta: float = 0.0  # RED-diff `dps.yaml`
    scale: float = 0.5  # w; RED-diff `sample_test.sh` inpainting (`dps.yaml` says 0.1)
    start: str = "official"  # baselines.start: x_T around the official H_pinv(y), or A†y only where it exists

    def __post_init__(self):
        """Refuse an unknown start."""
        check_choice(self.start, "start")


# RED-diff `sample_test.sh` (η, grad_term_weight) unless noted; a task missing here runs with the defaults.
TASK_SETTINGS: dict[str, dict] = {
    "inpaint": {"eta": 0.0, "scale": 0.5},
    "sr4": {"eta": 0.0, "scale": 1.0},  # also `dps.yaml`'s comment "1.0 for sr4"
    "hdr": {"eta": 0.5, "scale": 0.1},
    "phase_retrieval": {"eta": 1.0, "scale": 0.4},
    "nonlinear_deblur": {"eta": 0.5, "scale": 0.05},
    "deblur_gauss": {"eta": 1.0, "scale": 2.0},
    "deblur_motion": {"eta": 1.0, "scale": 2.0},  # no published value: Gaussian deblur's (our assumption)
}
RUN_COMMANDS: dict[str, dict] = {}  # DEFT's `run_commands.md` has no DPS command


def unsupported_reason(op: Operator) -> str | None:
    """None: DPS only differentiates through A, so it runs on every operator."""
    return None


def sample(eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
           config: DPSConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """DPS as RED-diff's `dps.py` (original=True): x_s = DDIM_η(x̂0, ε) − (w/‖r‖)·∇_{x_t}‖r‖², r = y − A(x̂0)."""
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    x = diffused_start(op, y, steps[0], noise, shape, config.start)
    for step in step_bar(steps, LABEL, progress):
        eps, x0, grad, residual_sq = denoise_with_vjp(eps_model, step, x, lambda x0: op.residual_norm_sq(x0, y))
        # w/‖r‖ with ‖r‖ per image: the DPS paper's ζ'/‖y − A(x̂0)‖ step on the squared norm.
        coeff = (config.scale / residual_sq.sqrt().clamp_min(TINY)).view(-1, *([1] * (x.ndim - 1)))
        z = ddim_noise(noise, step, config.eta, shape)
        x = ddim_update(step, x0, eps, config.eta, z) - coeff * grad
    return x, len(steps)
