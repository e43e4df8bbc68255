"""The chain-of-forgetting objective: target and retention images in one batch, t drawn from mirrored power laws.

Official code (`train.py`, lines 210–281): target t ~ P(t) ∝ (t+1)^τ over t = 0..T-1 (t = 0 least noisy), retention
t ~ P(t) ∝ (T-t)^τ, retention labels forced to the null class, one forward pass, total = mean(target) +
λ·mean(retention). The weighting is done by importance-sampling t, not by multiplying the loss.

`run` is a run config with a `difftune` section (difftune.config.DiffTuneConfig): a fine-tuning run
(FineTuneConfig) or a ControlNet branch's (difftune.controlnet.config.ControlTrainConfig).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from difftune.config import retention_count
from tunebench.config import RunConfig
from tunebench.diffusion import GaussianDiffusion
from tunebench.models import drop_labels
from tunebench.training import ImageBatches, denoising_losses, posterior, to_model_space

if TYPE_CHECKING:
    from difftune.retention_set import RetentionSet

RETENTION_STREAM = 1_000_003  # offsets the retention loader's seed so its order and flips differ from the target's


def timestep_law(num_timesteps: int, tau: float, retention: bool = False) -> torch.Tensor:
    """P(t) for t = 0..T-1: ∝ (t+1)^τ for target images, the mirror ∝ (T-t)^τ for retention images (τ=0: uniform)."""
    weights = torch.arange(1, num_timesteps + 1, dtype=torch.float64) ** tau
    if retention:
        weights = weights.flip(0)
    return weights / weights.sum()


def draw_timesteps(law: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` timesteps drawn independently from the categorical `law`."""
    return torch.multinomial(law.float(), count, replacement=True, generator=generator)


def make_objective(run: RunConfig, null: int, vae=None):
    """The per-sample loss function the shared trainer calls: batch {images, labels[, retention]} (and, for a
    ControlNet, `controls` of the target rows and `retention_controls` of the retention rows).

    `images` are pixels, or target posteriors from a latent cache (data.latents); retention rows are always pixels
    (the set is small and not cached), so then they are encoded and joined as posteriors: one latent draw covers
    the whole batch either way, which keeps a cached run equal to an encoding one.

    Returned 'loss' is weighted per sample so that its batch mean is mean(target) + λ·mean(retention); 'target' and
    'retention' hold the unweighted per-part losses for the logs.
    """
    diffusion = GaussianDiffusion(run.diffusion)
    d = run.difftune
    objective = d.objective()
    T = diffusion.num_timesteps
    uniform = timestep_law(T, 0.0)
    target_law = timestep_law(T, d.tau) if objective.weighted_t else uniform
    retention_law = timestep_law(T, d.retention_tau(), retention=True) if objective.weighted_t else uniform

    def loss_fn(model, batch, generator):
        """Per-sample losses of one mixed batch (target rows first, retention rows last)."""
        device = next(model.parameters()).device
        target = batch["images"].to(device)
        labels = drop_labels(batch["labels"], run.train.label_dropout, null, generator).to(device)
        t = draw_timesteps(target_law, target.shape[0], generator)
        controls = batch.get("controls")
        retained = batch.get("retention")
        if retained is not None:
            # Retention images only train the unconditional branch (their classes are the source domain's).
            labels = torch.cat([labels, torch.full((retained.shape[0],), null, device=device, dtype=labels.dtype)])
            t = torch.cat([t, draw_timesteps(retention_law, retained.shape[0], generator)])
            retained = retained.to(device)
            if target.ndim != retained.ndim:  # target posteriors from a latent cache: encode the retention pixels
                retained = posterior(retained, vae)
            target = torch.cat([target, retained])
            if controls is not None:
                controls = torch.cat([controls, batch["retention_controls"]])
        x0 = to_model_space(target, vae, run.model.vae_scaling, generator)
        extra = {} if controls is None else {"controls": controls.to(device)}
        losses = denoising_losses(model, diffusion, x0, labels, t.to(device), generator, **extra)
        n_target = batch["images"].shape[0]
        n_all = x0.shape[0]
        per_sample = losses["loss"]
        weights = torch.full_like(per_sample, n_all / n_target)
        if n_all > n_target:
            weights[n_target:] = d.retention_weight * n_all / (n_all - n_target)
        out = {**losses, "loss": per_sample * weights, "target": per_sample[:n_target].detach()}
        if n_all > n_target:
            out["retention"] = per_sample[n_target:].detach()
        return out

    return loss_fn


def batch_sizes(run: RunConfig) -> tuple[int, int]:
    """(target, retention) images per step: 26 + 6 of 32 with the defaults."""
    n_retention = retention_count(run)
    return run.train.batch_size - n_retention, n_retention


def mixed_batches(run: RunConfig, dataset, retention: RetentionSet | None):
    """batches(step) → {images, labels[, retention]}: 26 target + 6 retention images with the defaults (the target
    images as posteriors when `dataset` is a latent cache, data.latents)."""
    n_target, n_retention = batch_sizes(run)
    target = ImageBatches(dataset, n_target, run.train.seed, run.data.hflip)
    replay = None
    if retention is not None:
        replay = ImageBatches(retention, n_retention, run.train.seed + RETENTION_STREAM, run.data.hflip)

    def batches(step: int) -> dict:
        """The images of one step (a pure function of the step)."""
        batch = target.batch(step)
        if replay is not None:
            batch["retention"] = replay.get(step)[0]
        return batch

    return batches
