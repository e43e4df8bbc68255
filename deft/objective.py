"""DEFT's training loss (`htransform/losses.py`): conditional denoising score matching of the combined model ε_θ + ε_φ.

Per step: clean images x0 from the fine-tuning set, a fresh measurement y = A(x0) + noise (fresh masks too, drawn
from image ids outside the test range), t ~ U{0, …, T−1}, x_t = sqrt(ᾱ_t) x0 + sqrt(1 − ᾱ_t) ε; the frozen model
gives ε_θ and x̂0 without gradients; the loss is the per-image sum over pixels of (ε − ε_θ − ε_φ)². No time
weighting, no clipping.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from deft.backbone import FrozenEps
from deft.conditioning import conditioning
from deft.config import DeftConfig
from deft.operators.base import Operator
from tunebench.schedule import Schedule

TRAIN_IDS_START = 1 << 40  # training masks come from ids ≥ this, so they never repeat a test image's mask


def random_generators(count: int, generator: torch.Generator) -> list[torch.Generator]:
    """`count` per-image generators seeded from `generator` (for per-image measurement noise)."""
    seeds = torch.randint(1 << 62, (count,), generator=generator)
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def predict_with_head(head, backbone: FrozenEps, schedule: Schedule, run: DeftConfig, op, xt: torch.Tensor,
                      t: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(ε_θ + ε_φ, ε_θ) at x_t: the frozen model and its x̂0 without gradients, then the head (gradients if enabled)."""
    with torch.no_grad():
        eps_theta = backbone(xt, t)
        x0hat = schedule.predict_x0(xt, t, eps_theta)
        stack, g = conditioning(run.task, op, xt, x0hat, y, run.head)
    return eps_theta + head(stack, t, g), eps_theta


def make_deft_loss(run: DeftConfig, backbone: FrozenEps, schedule: Schedule,
                   operator_for: Callable[[torch.Tensor], Operator]):
    """The per-sample loss function for `tunebench.training.train` (batch: {'images': x0 in [-1, 1]}).

    `operator_for(image_ids)` builds the task's operator for a batch (e.g. `deft.operators.tasks.build_operator`).
    """

    def loss_fn(head, batch, generator):
        """Sum over pixels of (ε − ε_θ − ε_φ)² per image."""
        device = next(head.parameters()).device
        x0 = batch["images"].to(device)
        count = x0.shape[0]
        ids = TRAIN_IDS_START + torch.randint(1 << 40, (count,), generator=generator)
        op = operator_for(ids.to(device))
        y = op.measure(x0, random_generators(count, generator))
        t = torch.randint(schedule.num_train_timesteps, (count,), generator=generator).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        eps, _ = predict_with_head(head, backbone, schedule, run, op, schedule.q_sample(x0, t, noise), t, y)
        return {"loss": (noise - eps).pow(2).flatten(1).sum(1)}

    return loss_fn
