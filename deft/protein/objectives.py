"""The protein models' ε predictions and training losses (DEFT eq. 10, App. H Alg. 4–5), shared by training and
sampling.

Losses are per chain: the mean over residues of the squared ε error summed over x, y, z (DEFT's squared L2; Genie's
non-squared per-residue norm is not used, since the score-matching minimiser needs L2²). The frozen prior never
receives gradients: its ε_θ and x̂0 are computed under `no_grad`.
"""

from __future__ import annotations

import torch

from deft.protein.batches import CropBatches, random_motif_masks
from deft.protein.config import ProteinConfig
from deft.protein.diffusion import centred_randn
from deft.protein.egnn import likelihood_gradient
from tunebench.schedule import Schedule


def squared_error(noise: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Per chain: mean over residues of ‖ε − ε̂‖²."""
    return (noise - eps).pow(2).sum(-1).mean(-1)


def deft_eps(head, prior, schedule: Schedule, run: ProteinConfig, xt, t, motif_mask, motif) -> torch.Tensor:
    """ε_θ + ε_φ: the frozen prior, its x̂0 and the likelihood gradient without gradients, then the head."""
    with torch.no_grad():
        eps_theta = prior(xt, t)
        x0hat = schedule.predict_x0(xt, t, eps_theta)
        g = likelihood_gradient(x0hat, motif_mask, motif, run.head.sigma_y)
    return eps_theta + head(xt, t, motif_mask, motif, x0hat, g)


def _noised(batches: CropBatches, schedule: Schedule, step: int, generator: torch.Generator):
    """(x0, t, ε, x_t) for a training step."""
    x0 = batches.get(step)
    t = torch.randint(schedule.num_train_timesteps, (x0.shape[0],), generator=generator)
    noise = centred_randn(tuple(x0.shape), generator)
    return x0, t, noise, schedule.q_sample(x0, t, noise).float()


def make_loss(kind: str, run: ProteinConfig, schedule: Schedule, prior=None):
    """The per-chain loss for `tunebench.training.train`: kind 'prior', 'head' (needs the frozen `prior`) or
    'amortised'. Batches are {'step': s, 'batches': CropBatches}."""

    def loss_fn(model, batch, generator):
        """Denoising loss of one batch."""
        x0, t, noise, xt = _noised(batch["batches"], schedule, batch["step"], generator)
        if kind == "prior":
            return {"loss": squared_error(noise, model(xt, t))}
        empty = run.masks.empty_fraction if kind == "amortised" else 0.0
        mask = random_motif_masks(x0.shape[0], x0.shape[1], run.masks, generator, empty_fraction=empty)
        motif = mask[..., None] * x0
        if kind == "amortised":
            return {"loss": squared_error(noise, model(xt, t, mask, motif))}
        return {"loss": squared_error(noise, deft_eps(model, prior, schedule, run, xt, t, mask, motif))}

    return loss_fn
