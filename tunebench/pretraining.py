"""What pre-training and the fine-tuning methods built on it share: the model to train, its checked training data
and the DiT denoising loss."""

from __future__ import annotations

import torch

from tunebench.config import ConfigError, RunConfig
from tunebench.datasets import load_dataset
from tunebench.diffusion import GaussianDiffusion
from tunebench.latent_cache import LatentCache
from tunebench.models import build_dit, drop_labels, load_dit, load_vae, null_class
from tunebench.training import denoising_losses, to_model_space


def check_shapes(run: RunConfig, dataset, model, vae=None) -> None:
    """Fail early, naming the keys, when data and model cannot fit together."""
    m, d = run.model, run.data
    side, channels = d.resolution, d.channels
    if vae is not None:  # each VAE down block after the first halves the side
        side = d.resolution // 2 ** (len(vae.config.block_out_channels) - 1)
        channels = vae.config.latent_channels
    # A pre-trained model's own config.json fixes its architecture (the model.* keys are ignored), so the fix then
    # is to change the data or pick another model.
    source = f"the pre-trained model {m.pretrained}" if m.pretrained else "the model"
    if (model.config.sample_size, model.config.in_channels) != (side, channels):
        fix = ("set data.resolution/channels to match it, or pass a model trained at this size" if m.pretrained
               else "make model.sample_size/in_channels and data.resolution/channels agree")
        raise ConfigError(
            f"{source} takes {model.config.in_channels}×{model.config.sample_size}² inputs but data.resolution="
            f"{d.resolution}, data.channels={d.channels}{' through the VAE' if m.vae else ''} gives "
            f"{channels}×{side}²; {fix}")
    classes = dataset.spec.num_classes if getattr(dataset, "spec", None) else int(dataset.labels.max()) + 1
    if classes > null_class(model):
        fix = f"pass a model with at least {classes} classes" if m.pretrained else "raise model.num_classes"
        raise ConfigError(f"dataset '{d.dataset}' has {classes} classes but the label table of {source} has "
                          f"{null_class(model)} (model.num_classes); {fix}")


def make_model(run: RunConfig):
    """The DiT to train: loaded from model.pretrained if set (its architecture wins), else built from the config."""
    if run.model.pretrained:
        return load_dit(run.model.pretrained)
    return build_dit(run.model)


def load_training_data(run: RunConfig, model):
    """The run's training split and its VAE (None in pixel space), checked to fit the model's input; with
    data.latents the split is its latent cache (checked to hold these images), whose batches are posteriors."""
    dataset = load_dataset(run.data.dataset, "train", run.data.resolution, run.data.channels, run.data.root)
    vae = load_vae(run.model.vae) if run.model.vae else None
    check_shapes(run, dataset, model, vae)
    if run.data.latents:
        dataset = LatentCache(run.data.latents, run, dataset)
    return dataset, vae


def make_loss(run: RunConfig, null: int, vae=None):
    """Pre-training loss: uniform t, label dropout once per sample, DiT's hybrid loss (VAE latents if any)."""
    diffusion = GaussianDiffusion(run.diffusion)

    def loss_fn(model, batch, generator):
        """Per-sample losses for one batch."""
        device = next(model.parameters()).device
        x0 = to_model_space(batch["images"].to(device), vae, run.model.vae_scaling, generator)
        labels = drop_labels(batch["labels"], run.train.label_dropout, null, generator).to(device)
        t = torch.randint(diffusion.num_timesteps, (x0.shape[0],), generator=generator).to(device)
        return denoising_losses(model, diffusion, x0, labels, t, generator)

    return loss_fn
