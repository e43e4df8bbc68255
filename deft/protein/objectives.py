"""The protein models' ε predictions and training losses (DEFT eq. 10, App. H Alg. 4–5), shared by training and
sampling.

Losses are per chain: the mean over residues of the squared ε error summed over x, y, z (DEFT's squared L2; Genie's
non-squared per-residue norm is not used, since the score-matching minimiser needs L2²). The frozen prior never
receives gradients: its ε_θ and x̂0 are computed under `no_grad`.
"""

from __future__ import annotations

import torch

from deft.protein.batches import CropBatches, random_motif_masks
from deft.protein.config import PriorLoss, ProteinConfig
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


def _x0hat_distances(x0: torch.Tensor, x0hat: torch.Tensor, t: torch.Tensor, loss: PriorLoss, coord_scale: float,
                     num_train_timesteps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(which chains carry an x̂0 loss: t < `loss.distance_max_t`·T, x̂0's pair distances in Å), both losses' shared
    start. High-t chains carry no loss; their x̂0 (divided by sqrt(ᾱ_t) ~ 1e-4) is swapped for x0 so no huge value
    enters; the 1e-10 keeps the gradient of a zero distance finite."""
    keep = t < loss.distance_max_t * num_train_timesteps
    x0hat = torch.where(keep[:, None, None], x0hat, x0)
    return keep, ((x0hat[:, :, None] - x0hat[:, None]).pow(2).sum(-1) + 1e-10).sqrt() / coord_scale


def x0_distance_error(x0: torch.Tensor, x0hat: torch.Tensor, t: torch.Tensor, loss: PriorLoss, coord_scale: float,
                      num_train_timesteps: int) -> torch.Tensor:
    """Per chain: the mean over data pairs (i ≠ j) closer than `loss.distance_cutoff` Å of the squared error (Å²) of
    x̂0's pair distance, zero for chains at t ≥ `loss.distance_max_t`·T (`PriorLoss`, FrameDiff's 2D loss)."""
    keep, pred = _x0hat_distances(x0, x0hat, t, loss, coord_scale, num_train_timesteps)
    true = torch.cdist(x0, x0) / coord_scale
    n = x0.shape[1]
    pairs = (true < loss.distance_cutoff) & ~torch.eye(n, dtype=torch.bool, device=x0.device)
    error = ((pred - true).pow(2) * pairs).sum((1, 2)) / pairs.sum((1, 2)).clamp(min=1)
    return error * keep.to(error.dtype)


def x0_clash_error(x0hat: torch.Tensor, x0: torch.Tensor, t: torch.Tensor, loss: PriorLoss, coord_scale: float,
                   num_train_timesteps: int) -> torch.Tensor:
    """Per chain: Σ over Cα pairs |i − j| ≥ 3 of relu(`loss.clash_distance` − d̂_ij)² (Å²) / residues, on x̂0, zero
    for chains at t ≥ `loss.distance_max_t`·T (`PriorLoss`)."""
    keep, pred = _x0hat_distances(x0, x0hat, t, loss, coord_scale, num_train_timesteps)
    n = x0.shape[1]
    index = torch.arange(n, device=x0.device)
    apart = (index[None] - index[:, None]).abs() >= 3
    violation = (loss.clash_distance - pred).clamp(min=0).pow(2) * apart
    return violation.sum((1, 2)) / 2 / n * keep.to(pred.dtype)


def _recycled_rows(model, batch: int, generator: torch.Generator) -> dict:
    """Keyword arguments for a self-conditioned network's training forward: `recycle`, which rows' second pass
    sees the first pass's x̂0, each with probability 1/2 (Chen, Zhang & Hinton 2023, "Analog Bits"), so the network
    also stays a plain denoiser; empty for other networks. Drawn from the training generator only when needed, so
    other runs' random streams are unchanged."""
    if not getattr(model.config, "self_condition", False):
        return {}
    return {"recycle": torch.rand(batch, generator=generator) < 0.5}


def training_timesteps(batch: int, num_train_timesteps: int, t_power: float, generator: torch.Generator):
    """(B,) timesteps floor(T·u^t_power) for u uniform on [0, 1) (`PriorLoss.t_power`); t_power 1 draws uniform
    integers with `randint`, the random stream of every run before the option."""
    if t_power == 1.0:
        return torch.randint(num_train_timesteps, (batch,), generator=generator)
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    return (num_train_timesteps * u.pow(t_power)).long().clamp(max=num_train_timesteps - 1)


def _noised(batches: CropBatches, schedule: Schedule, step: int, generator: torch.Generator, t_power: float = 1.0,
            input_perturbation: float = 0.0):
    """(x0, t, ε, x_t) for a training step; with `input_perturbation` γ > 0, x_t is noised with ε + γξ (DDPM-IP,
    `PriorLoss.input_perturbation`) while ε stays the target. ξ is drawn only then, so other runs' streams are
    unchanged."""
    x0 = batches.get(step)
    t = training_timesteps(x0.shape[0], schedule.num_train_timesteps, t_power, generator)
    noise = centred_randn(tuple(x0.shape), generator)
    seen = noise + input_perturbation * centred_randn(tuple(x0.shape), generator) if input_perturbation else noise
    return x0, t, noise, schedule.q_sample(x0, t, seen).float()


def make_loss(kind: str, run: ProteinConfig, schedule: Schedule, prior=None):
    """The per-chain loss for `tunebench.training.train`: kind 'prior', 'head' (needs the frozen `prior`) or
    'amortised'. Batches are {'step': s, 'batches': CropBatches}."""

    def loss_fn(model, batch, generator):
        """Denoising loss of one batch."""
        aux = getattr(run, "loss", None)  # the prior's options (PriorRun); heads and amortised models have none
        t_power, perturbation = (aux.t_power, aux.input_perturbation) if aux is not None else (1.0, 0.0)
        x0, t, noise, xt = _noised(batch["batches"], schedule, batch["step"], generator, t_power, perturbation)
        recycle = _recycled_rows(model, x0.shape[0], generator) if kind != "head" else {}
        if kind == "prior":
            eps = model(xt, t, **recycle)
            losses = {"loss": squared_error(noise, eps)}
            if aux is not None and (aux.distance_weight > 0 or aux.clash_weight > 0):
                x0hat, total = schedule.predict_x0(xt, t, eps), losses["loss"]
                losses["eps_loss"] = losses["loss"]
                if aux.distance_weight > 0:
                    losses["distance_loss"] = x0_distance_error(x0, x0hat, t, aux, run.data.coord_scale,
                                                                schedule.num_train_timesteps)
                    total = total + aux.distance_weight * losses["distance_loss"]
                if aux.clash_weight > 0:
                    losses["clash_loss"] = x0_clash_error(x0hat, x0, t, aux, run.data.coord_scale,
                                                          schedule.num_train_timesteps)
                    total = total + aux.clash_weight * losses["clash_loss"]
                losses["loss"] = total
            return losses
        empty = run.masks.empty_fraction if kind == "amortised" else 0.0
        mask = random_motif_masks(x0.shape[0], x0.shape[1], run.masks, generator, empty_fraction=empty)
        motif = mask[..., None] * x0
        if kind == "amortised":
            return {"loss": squared_error(noise, model(xt, t, mask, motif, **recycle))}
        return {"loss": squared_error(noise, deft_eps(model, prior, schedule, run, xt, t, mask, motif))}

    return loss_fn
