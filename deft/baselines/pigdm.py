"""ΠGDM (Song et al. 2023) as RED-diff's `pgdm.py` with awd: its settings and sampler.

`form="pinv"` (the default) is the code DEFT's comparisons ran (alexdenker/DEFT@2495d46 `algos/pgdm.py`, RED-diff's):
v = H_pinv(y) − H_pinv(H(x̂0)) = A†(y − A x̂0) whatever σ_y (line 56), with its two task terms: for HDR the
contrast term 1500·std(x̂0) joins the inner product (lines 59-62), and for inpainting (RED-diff's `in2` masks,
lines 91-95) the measured pixels of x̂0 are replaced by y and the guidance is kept only in the hole.
`form="noisy"`: v = r_t²·Aᵀ(r_t²AAᵀ + σ_y²I)⁻¹(y − A x̂0), r_t² = 1 − ᾱ_t, the ΠGDM likelihood score scaled by r_t²
so that σ_y = 0 gives the pinv form with the same w·sqrt(ᾱ_s ᾱ_t) step, and neither task term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from deft.baselines.common import (
    TINY,
    check_choice,
    conjugate_gradient,
    ddim_noise,
    denoise_with_vjp,
    diffused_start,
    has_pinv,
    image_shape,
    step_bar,
)
from deft.operators.base import LinearOperator, Operator, SVDOperator
from deft.operators.linear import Inpainting
from deft.operators.nonlinear import HDR
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule, ddim_update

LABEL = "ΠGDM"


@dataclass(frozen=True)
class PiGDMConfig:
    """ΠGDM (Song et al. 2023) as RED-diff's `pgdm.py` with awd."""

    steps: int = 100  # RED-diff `sample_test.sh`; the ΠGDM paper's ImageNet runs
    eta: float = 1.0  # RED-diff `sample_test.sh` (`pgdm.yaml` says 0.0)
    scale: float = 1.0  # w; RED-diff `pgdm.yaml` grad_term_weight
    cg_iterations: int = 50  # only for linear operators without an SVD or A† (ours, as deepinv's CG solve)
    form: str = "pinv"  # baselines.pigdm_form: the official pseudo-inverse form with its task terms, or "noisy"
    start: str = "official"  # baselines.start: x_T around the official H_pinv(y), or A†y only where it exists

    def __post_init__(self):
        """Refuse an unknown form or start."""
        check_choice(self.form, "pigdm_form")
        check_choice(self.start, "start")


TASK_SETTINGS: dict[str, dict] = {}  # η 1.0, w 1, 100 steps for every task in RED-diff's `sample_test.sh`
RUN_COMMANDS: dict[str, dict] = {}  # DEFT's `run_commands.md` has no ΠGDM command
HDR_CONTRAST = 1500  # RED-diff's weight of std(x̂0) in the HDR inner product (`algos/pgdm.py` line 62)


def unsupported_reason(op: Operator) -> str | None:
    """Why ΠGDM cannot run on `op` (it needs an SVD or an adjoint, or A† without noise), or None."""
    if isinstance(op, LinearOperator) or (has_pinv(op) and op.noise_std == 0):
        return None
    return (f"ΠGDM needs a linear operator (an SVD or an adjoint) or, without measurement noise, a pseudo-inverse; "
            f"operator '{op.name}' ({type(op).__name__}) has neither")


def pigdm_vector(op: Operator, y: torch.Tensor, x0: torch.Tensor, r2: float, cg_iterations: int,
                 noisy: bool) -> torch.Tensor:
    """v = r²·Aᵀ(r²AAᵀ + σ²I)⁻¹(y − A x̂0) with σ = σ_y if `noisy` else 0, where σ = 0 gives A†(y − A x̂0) (RED-diff's
    `pgdm.py`).

    Spectral for an SVDOperator; h†(y) − h†(h(x̂0)) for other operators with a pseudo-inverse when σ = 0 (the
    ΠGDM paper's non-linear form, equal to A†(y − A x̂0) for linear A); conjugate gradients with the adjoint for
    linear operators otherwise (as deepinv's PiGDM does).
    """
    sigma2 = op.noise_std ** 2 if noisy else 0.0
    if isinstance(op, SVDOperator):
        s = op.singulars()
        gain = torch.where(s > 0, r2 * s / (r2 * s ** 2 + sigma2).clamp_min(TINY), torch.zeros_like(s))
        return op.v(gain * op.ut(y - op(x0)))
    if sigma2 == 0 and has_pinv(op):
        return op.pinv(y) - op.pinv(op(x0))
    u = conjugate_gradient(lambda w: r2 * op(op.adjoint(w)) + sigma2 * w, y - op(x0), cg_iterations)
    return r2 * op.adjoint(u)


def sample(eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
           config: PiGDMConfig, progress: bool = False) -> tuple[torch.Tensor, int]:
    """ΠGDM as RED-diff's `pgdm.py` (awd): x_s = DDIM_η(x̂0, ε) + w·sqrt(ᾱ_s)·sqrt(ᾱ_t)·∇_{x_t}⟨sg(v), x̂0(x_t)⟩, with
    the pinv form's task terms (module docstring)."""
    steps, shape = schedule.steps(config.steps), image_shape(eps_model)
    official = config.form == "pinv"
    contrast = official and isinstance(op, HDR)
    replace_measured = official and isinstance(op, Inpainting)
    x = diffused_start(op, y, steps[0], noise, shape, config.start)
    for step in step_bar(steps, "PiGDM", progress):
        def inner_product(x0: torch.Tensor) -> torch.Tensor:
            """⟨sg(v), x̂0⟩ per image, with v at the detached x̂0 (r_t² = 1 − ᾱ_t), plus HDR's contrast term."""
            # Called only within this step, so `step` is always the step it belongs to.
            v = pigdm_vector(op, y, x0.detach(), 1 - step.abar_t, config.cg_iterations, not official)  # noqa: B023
            value = (v * x0).flatten(1).sum(1)
            return value + HDR_CONTRAST * x0.flatten(1).std(1) if contrast else value

        eps, x0, grad, _ = denoise_with_vjp(eps_model, step, x, inner_product)
        if replace_measured:
            kept = op.singulars()  # the mask
            x0, grad = x0 * (1 - kept) + y * kept, grad * (1 - kept)
        z = ddim_noise(noise, step, config.eta, shape)
        guidance = config.scale * (step.abar_s * step.abar_t) ** 0.5 * grad
        x = ddim_update(step, x0, eps, config.eta, z) + guidance
    return x, len(steps)
