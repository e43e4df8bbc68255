"""What the h-transform network sees: the conditioning stack per task and the likelihood gradient g.

Following the official `htransform/likelihoods.py::get_xi_condition`, with g = ∇_{x̂0} log p(y | x̂0) evaluated at the
frozen model's denoised estimate x̂0 (no backpropagation through the big network):

- default (super-resolution, HDR, deblurring, non-linear blur): [x_t, x̂0, g]                 → 3C channels
- inpainting: [x_t, x̂0, y, mask, g]                                                         → 4C + 1 channels
- phase retrieval: [x_t, x̂0, phase-swapped image, HIO reconstruction from x̂0, g]            → 5C channels

The official phase-retrieval stack takes its gradient at x_t; here every task uses the gradient at x̂0, as the
paper's parametrisation states. The ablation switches drop x̂0 (`use_x0hat`) or replace g by Aᵀy (A†y for a
non-linear A) in both the stack and the residual branch (`use_loggrad`), as in the paper's CT ablation.
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
    g = op.likelihood_grad(x0hat, y) if head.use_loggrad else measurement_image(op, y)
    parts = [xt, x0hat] if head.use_x0hat else [xt]
    kind = stack_kind(task.operator)
    if kind == "inpaint":
        mask = op.singulars()[:, :1].expand(xt.shape[0], 1, *xt.shape[2:]).to(xt.dtype)
        parts += [y, mask]
    elif kind == "phase":
        parts += [op.phase_swap(y, x0hat), op.hio(y, x0hat, rounds=task.hio_rounds, iterations=task.hio_iterations)]
    return torch.cat([*parts, g], dim=1), g
