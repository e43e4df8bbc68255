"""What the h-transform network sees: the conditioning stack per task and the likelihood gradient g.

Following the official `htransform/likelihoods.py::get_xi_condition` (alexdenker/DEFT@2495d46, lines 42-111), with
g = ∇ log p(y | ·) evaluated at the frozen model's denoised estimate x̂0 (no backpropagation through the big network):

- default (super-resolution, HDR, deblurring, non-linear blur): [x_t, x̂0, g]                 → 3C channels
- inpainting: [x_t, x̂0, y, mask, g]                                                         → 4C + 1 channels
- phase retrieval: [x_t, x̂0, phase-swapped image, HIO reconstruction from x̂0, g]            → 5C channels

Protocol switches (docs/deft.md, "Deviations from the official code"): `task.gradient` picks the official
likelihood class's formula for g (`Operator.official_likelihood_grad`) or the exact VJP (`likelihood_grad`);
`task.phase_grad_at` evaluates the phase-retrieval g at x_t, as the official code does (line 86), or at x̂0, as the
paper's parametrisation states for every task; `task.hio_tie` picks the HIO channel tie. The ablation switches drop
x̂0 (`use_x0hat`) or replace g by Aᵀy (A†y for a non-linear A) in both the stack and the residual branch
(`use_loggrad`), as in the paper's CT ablation.
"""

from __future__ import annotations

import torch

from deft.config import HeadConfig
from deft.operators.base import Operator
from deft.operators.task_settings import TaskConfig


def stack_kind(operator: str) -> str:
    """'inpaint', 'phase' or 'default' for a registry operator name."""
    if operator.startswith("inpaint"):
        return "inpaint"
    return "phase" if operator == "phase_retrieval" else "default"


def stack_channels(operator: str, channels: int, head: HeadConfig) -> int:
    """Width of the conditioning stack for `operator` on C-channel images."""
    extra = {"inpaint": channels + 1, "phase": 2 * channels, "default": 0}[stack_kind(operator)]
    return (3 if head.use_x0hat else 2) * channels + extra


def measurement_image(op: Operator, y: torch.Tensor) -> torch.Tensor:
    """Aᵀy (linear operators) or A†y: the measurement brought back to image space for the `use_loggrad` ablation."""
    return op.adjoint(y) if op.linear else op.pinv(y)


def conditioning(task: TaskConfig, op: Operator, xt: torch.Tensor, x0hat: torch.Tensor, y: torch.Tensor,
                 head: HeadConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(stack, g): the head's input and the gradient its residual branch scales."""
    kind = stack_kind(task.operator)
    if head.use_loggrad:
        at = xt if kind == "phase" and task.phase_grad_at == "xt" else x0hat
        g = likelihood_gradient(task, op, at, y)
    else:
        g = measurement_image(op, y)
    parts = [xt, x0hat] if head.use_x0hat else [xt]
    if kind == "inpaint":
        mask = op.singulars()[:, :1].expand(xt.shape[0], 1, *xt.shape[2:]).to(xt.dtype)
        parts += [y, mask]
    elif kind == "phase":
        parts += [op.phase_swap(y, x0hat), op.hio(y, x0hat, rounds=task.hio_rounds, iterations=task.hio_iterations,
                                                  tie=task.hio_tie)]
    return torch.cat([*parts, g], dim=1), g


def likelihood_gradient(task: TaskConfig, op: Operator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """g at `x`: the official likelihood's formula or the exact VJP, as `task.gradient` says."""
    return op.official_likelihood_grad(x, y) if task.gradient == "official" else op.likelihood_grad(x, y)
