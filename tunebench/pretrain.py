"""Pre-train (or continue training) a class-conditional DiT on a registered dataset, e.g. the mini source domain.

    python -m tunebench.pretrain --scale mini --out runs/mini/source

Writes OUT/config.json (resolved), OUT/checkpoints/ (resumable), OUT/stats.jsonl, OUT/model/ (the EMA weights as a
diffusers save_pretrained folder, what DiT samples from) and OUT/summary.json (time, steps/s, parameter count).
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from tunebench.cli import (add_config_args, add_training_args, config_from_args, print_config, run_cli,
                           setup_logging)
from tunebench.config import ConfigError, RunConfig
from tunebench.datasets import load_dataset
from tunebench.diffusion import GaussianDiffusion
from tunebench.io import git_commit, input_fingerprint, is_main_process, write_json
from tunebench.latents import LatentCache
from tunebench.models import (build_dit, count_parameters, drop_labels, export_dit, load_dit, load_vae, null_class,
                              weights_sha256)
from tunebench.speed import compute_record
from tunebench.training import ImageBatches, denoising_losses, to_model_space, train, write_run_config

log = logging.getLogger("tunebench.pretrain")


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
    """Pre-training loss: uniform t, label dropout once per sample, DiT's hybrid loss (VAE latents if any); a batch's
    `controls` (ControlNet condition images) are passed to the model."""
    diffusion = GaussianDiffusion(run.diffusion)

    def loss_fn(model, batch, generator):
        """Per-sample losses for one batch."""
        device = next(model.parameters()).device
        x0 = to_model_space(batch["images"].to(device), vae, run.model.vae_scaling, generator)
        labels = drop_labels(batch["labels"], run.train.label_dropout, null, generator).to(device)
        t = torch.randint(diffusion.num_timesteps, (x0.shape[0],), generator=generator).to(device)
        extra = {"controls": batch["controls"].to(device)} if "controls" in batch else {}
        return denoising_losses(model, diffusion, x0, labels, t, generator, **extra)

    return loss_fn


def main(argv: list[str] | None = None) -> None:
    """Parse flags, train, export the EMA model."""
    parser = argparse.ArgumentParser(prog="python -m tunebench.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    add_training_args(parser)
    args = parser.parse_args(argv)
    run = config_from_args(args)
    if args.dry_run:
        print_config(run)
        return
    setup_logging(args.out)
    torch.manual_seed(run.train.seed)
    model = make_model(run)
    dataset, vae = load_training_data(run, model)
    inputs = {"pretrained": input_fingerprint(run.model.pretrained)} if run.model.pretrained else {}
    write_run_config(args.out, run, args.resume, inputs)
    log.info("pre-training %s params on %s (%d images), %d steps of %d", f"{count_parameters(model):,}",
             run.data.dataset, len(dataset), run.train.steps, run.train.batch_size)
    images = ImageBatches(dataset, run.train.batch_size, run.train.seed, run.data.hflip)
    started = time.perf_counter()
    _, ema = train(run, model, make_loss(run, null_class(model), vae), images.batch, args.out, resume=args.resume,
                   progress=not args.no_progress, inputs=inputs)
    seconds = time.perf_counter() - started
    spec = getattr(dataset, "spec", None)
    provenance = {"dataset": run.data.dataset, "class_names": list(spec.class_names) if spec else [],
                  "steps": run.train.steps, "git_commit": git_commit(), "weights": "ema"}
    exported = export_dit(ema, args.out / "model", run, extra=provenance)
    if not is_main_process():
        return  # rank 0 exported the model and writes its summary
    write_json(args.out / "summary.json", {
        **provenance, "parameters": count_parameters(ema), "weights_sha256": weights_sha256(exported),
        "wall_seconds_this_invocation": round(seconds, 1), **compute_record()})
    log.info("exported EMA model to %s", args.out / "model")


if __name__ == "__main__":
    run_cli(main)
