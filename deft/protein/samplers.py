"""Motif-scaffolding samplers on the frozen prior: unconditional, replacement, DPS, DEFT and the amortised model.

All share one DDIM loop on the cosine schedule (η and the noise scale from `sample`), start from centred noise and
re-centre after every step. Randomness comes only from `CentredNoise` (per-sample streams), drawn in a fixed order:
the start, then per step the DDIM noise (when its weight is non-zero) and, for replacement, the motif's forward
noise; networks run on fixed-size row chunks. So sample k depends only on its seed, never on the batch size.

- replacement (App. H Alg. 8): after each step the motif residues are overwritten by y noised to the next level.
- DPS (Alg. 10): x_s −= ζ·∇_{x_t} ‖y − A x̂0(x_t)‖ (Chung et al.'s un-squared norm), backpropagating through ε_θ.
- DEFT (Alg. 6): ε = ε_θ + ε_φ(x_t, t, x̂0, y, g), no backpropagation.
- amortised (Alg. 4): ε = ε_ψ(x_t, t, M, y) of the conditional model trained from scratch; the prior is unused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from deft.protein.config import METHODS, ProteinConfig
from deft.protein.diffusion import CentredNoise, centre
from deft.protein.objectives import deft_eps
from tunebench.sampling import chunked
from tunebench.schedule import Schedule, ddim_update


@dataclass
class Counter:
    """Network evaluations per sample (prior forwards, conditional-model forwards, VJPs through the prior)."""

    prior: int = 0
    conditional: int = 0
    vjp: int = 0


def _dps_chunk(prior, schedule: Schedule, t, x, motif_mask, motif):
    """(ε_θ, ∇_x ‖y − A x̂0(x)‖) for one chunk, concatenated on the last axis (rows are independent)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        eps = prior(x, t)
        residual = motif_mask[..., None] * (motif - schedule.predict_x0(x, t, eps))
        norm = residual.pow(2).sum((1, 2)).clamp(min=1e-12).sqrt()
        (grad,) = torch.autograd.grad(norm.sum(), x)
    return torch.cat([eps.detach(), grad], -1)


@torch.no_grad()
def sample_motif(method: str, prior, schedule: Schedule, run: ProteinConfig, motif_mask: torch.Tensor,
                 motif: torch.Tensor, noise: CentredNoise, model=None, dps_scale: float | None = None,
                 progress: bool = False, start: tuple[int, torch.Tensor] | None = None,
                 on_step: Callable[[int, torch.Tensor], None] | None = None) -> tuple[torch.Tensor, dict]:
    """Scaffolds (B×N×3, model units) for motif `motif` (B×N×3, zero off the mask) and `motif_mask` (B×N), one row
    per seed of `noise`, and the per-sample cost. `model` is the DEFT head or the amortised model. `start` = (t, x_t)
    begins at the sampler's first timestep at or below t from the given x_t (noised to that timestep) instead of at
    the top from noise: a restart, for measuring where in the chain the prior goes wrong. `on_step(t, x̂0)`, when
    given, sees every step's x̂0 (B×N×3, model units), to follow a chain through the sampler."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method in ("deft", "amortised") and model is None:
        raise ValueError(f"method {method!r} needs its trained model")
    if method == "dps" and dps_scale is None:
        raise ValueError("DPS needs a guidance scale")
    chunk, eta, length = run.sample.compute_chunk, run.sample.eta, motif.shape[1]
    count, started = Counter(), time.perf_counter()
    keep = motif_mask[..., None].bool()
    steps = schedule.steps(run.sample.steps, run.sample.spacing)
    if start is None:
        x = noise.randn((length, 3))
    else:
        steps = [step for step in steps if step.t <= start[0]]
        x = start[1]
    for step in tqdm(steps, desc=method, unit="step", disable=not progress):
        t = torch.full((x.shape[0],), step.t, dtype=torch.long)
        grad = None
        if method == "dps":
            out = chunked(lambda *rows: _dps_chunk(prior, schedule, *rows), chunk, t, x, motif_mask, motif)
            eps, grad = out[..., :3], out[..., 3:]
            count.prior, count.vjp = count.prior + 1, count.vjp + 1
        elif method == "deft":
            eps = chunked(lambda *rows: deft_eps(model, prior, schedule, run, *rows), chunk, x, t, motif_mask, motif)
            count.prior, count.conditional = count.prior + 1, count.conditional + 1
        elif method == "amortised":
            eps = chunked(model, chunk, x, t, motif_mask, motif)
            count.conditional += 1
        else:
            eps = chunked(prior, chunk, x, t)
            count.prior += 1
        x0 = schedule.predict_x0(x, t, eps)
        if on_step is not None:
            on_step(step.t, x0)
        c1, _ = step.coefficients(eta)
        z = noise.randn((length, 3)) * run.sample.noise_scale if c1 > 0 else None
        x = ddim_update(step, x0, eps, eta, z)
        if grad is not None:
            x = x - dps_scale * grad
        if method == "replacement":
            noised = step.abar_s ** 0.5 * motif
            if step.abar_s < 1.0:
                noised = noised + (1 - step.abar_s) ** 0.5 * noise.randn((length, 3))
            x = torch.where(keep, noised, x)
        x = centre(x)
    seconds = time.perf_counter() - started
    stats = {"prior_nfe_per_sample": count.prior, "conditional_nfe_per_sample": count.conditional,
             "prior_vjps_per_sample": count.vjp, "seconds_per_sample": seconds / x.shape[0]}
    return x, stats
