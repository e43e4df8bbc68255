"""DEFT sampling: DDIM with ε = ε_θ + ε_φ, 100 leading steps, η configurable, no backpropagation (DEFT `algos/ddim.py`).

Starts from N(0, I) (no conditional initialisation). Each step is one frozen-model and one head evaluation; sample
k's noise comes only from seed k, and both networks run on fixed-size chunks, so results do not depend on the
batch size, with one exception: phase retrieval's official HIO channel tie (`task.hio_tie`) ties the batch's first
image only, as the official code does.
"""

from __future__ import annotations

import functools

import torch
from tqdm.auto import tqdm

from deft.backbone import FrozenEps
from deft.config import DeftConfig
from deft.objective import predict_with_head
from deft.operators.base import Operator
from tunebench.noise import SampleNoise
from tunebench.sampling import chunked
from tunebench.schedule import Schedule, ddim_update


@torch.no_grad()
def deft_sample(head, backbone: FrozenEps, schedule: Schedule, run: DeftConfig, op: Operator, y: torch.Tensor,
                noise: SampleNoise, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """Posterior samples in [-1, 1] for measurements `y` (one row per seed of `noise`) and the cost statistics."""
    head.eval()
    shape = (backbone.channels, backbone.sample_size, backbone.sample_size)
    x = noise.randn(shape)
    steps = schedule.steps(run.sample.steps)
    head_in_chunks = functools.partial(chunked, head, run.sample.compute_chunk)  # batch-size independent
    start = backbone.evaluations
    for step in tqdm(steps, desc="deft", unit="step", disable=not progress):
        t = torch.full((x.shape[0],), step.t, dtype=torch.long, device=x.device)
        eps, _ = predict_with_head(head_in_chunks, backbone, schedule, run, op, x, t, y)
        x0 = schedule.predict_x0(x, t, eps)
        c1, _ = step.coefficients(run.sample.eta)
        x = ddim_update(step, x0, eps, run.sample.eta, noise.randn(shape) if c1 > 0 else None)
    stats = {"nfe_per_image": (backbone.evaluations - start) / len(noise), "head_evaluations_per_image": len(steps),
             "backbone_vjps_per_image": 0, "steps": len(steps), "eta": run.sample.eta, "sampler": "ddim"}
    return x.clamp(-1, 1), stats
