"""Train a ControlNet branch on a frozen DiT and record its control fidelity over training (Diff-Tuning §4.3).

    python -m difftune.controlnet.train --base runs/mini/source/model --condition canny \\
        --out runs/mini/controlnet/mnist5k/canny/pretrained
    python -m difftune.controlnet.train --base runs/mini/finetune/mnist5k/diff_tuning/model --condition canny \\
        --out runs/mini/controlnet/mnist5k/canny/diff_tuning

The branch (difftune.controlnet.model) learns the standard denoising loss (uniform t, 10% label dropout) on the training
split of data.dataset, its condition computed from each image (difftune.controlnet.conditions). At step 0 and at every checkpoint
the current (non-EMA) weights sample control.eval_images held-out test images from their conditions (seed i for
image i, the image's own label, guidance 1) and score the control fidelity; a resumed run keeps the scores it has.
Writes OUT/config.json, OUT/checkpoints/, OUT/stats.jsonl, OUT/fidelity/step-NNNNNNN.json,
OUT/fidelity.csv (step, score mean and std, chance score, threshold), OUT/controlnet/ (the trained branch,
save_pretrained) and OUT/summary.json.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from difftune.controlnet.config import ControlTrainConfig
from difftune.controlnet.model import ControlledDiT, DiTControlNet, export_controlnet
from difftune.controlnet.conditions import (CHANNELS, CONDITIONS, chance_fidelity, convergence_threshold, fidelity,
                               make_conditions)
from tunebench.cli import (add_config_args, add_training_args, config_from_args, flag_overrides, print_config,
                           run_cli, setup_logging)
from tunebench.config import ConfigError
from tunebench.datasets import load_dataset
from tunebench.io import git_commit, input_fingerprint, read_json, to_uint8, write_csv, write_json
from tunebench.models import count_parameters, load_dit, null_class
from tunebench.pretraining import load_training_data, make_loss
from tunebench.sampling import sample_batches
from tunebench.training import ImageBatches, train, write_run_config

log = logging.getLogger("difftune.controlnet.train")
EVAL_SEED = 20_240_613  # orders the test split for the held-out evaluation images
CURVE_COLUMNS = ("step", "condition", "mean", "std", "n", "chance", "threshold")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The shared config and training flags plus --base and --condition."""
    parser = argparse.ArgumentParser(prog="python -m difftune.controlnet.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    add_training_args(parser)
    parser.add_argument("--base", help="the frozen DiT folder (sets model.pretrained)")
    parser.add_argument("--condition", choices=CONDITIONS, help="condition (sets control.condition)")
    parser.add_argument("--dataset", help="training and evaluation images (sets data.dataset)")
    return parser.parse_args(argv)


def resolve_run(args: argparse.Namespace) -> ControlTrainConfig:
    """Paper defaults < scale < YAML files < --base/--condition/--dataset < --set."""
    shortcuts = flag_overrides((args.base, "model", "pretrained"), (args.dataset, "data", "dataset"),
                               (args.condition, "control", "condition"))
    run = config_from_args(args, ControlTrainConfig, shortcuts=shortcuts)
    if not run.model.pretrained:
        raise ConfigError("a ControlNet needs a frozen base model: pass --base FOLDER (or model.pretrained)")
    return run


def make_batches(run: ControlTrainConfig, dataset):
    """batches(step) → {images, labels, controls}: the step's images and their conditions."""
    source = ImageBatches(dataset, run.train.batch_size, run.train.seed, hflip=False)

    def batches(step: int) -> dict:
        """One step's batch (a pure function of the step)."""
        batch = source.batch(step)
        controls = torch.from_numpy(make_conditions(run.control.condition, to_uint8(batch["images"])))
        return {**batch, "controls": controls}

    return batches


class FidelityProbe:
    """Samples the held-out evaluation images from their conditions and scores how well the samples follow them."""

    def __init__(self, run: ControlTrainConfig, out_dir: Path, vae=None):
        """Fix the evaluation images (a seeded draw from the test split), their conditions, labels and seeds."""
        test = load_dataset(run.data.dataset, "test", run.data.resolution, run.data.channels, run.data.root)
        count = min(run.control.eval_images, len(test))
        order = torch.randperm(len(test), generator=torch.Generator().manual_seed(EVAL_SEED))[:count]
        items = [test[int(i)] for i in order]
        self.images = torch.stack([image for image, _ in items]).permute(0, 2, 3, 1).numpy()
        self.labels = [int(label) for _, label in items]
        self.controls = torch.from_numpy(make_conditions(run.control.condition, self.images))
        self.run, self.vae, self.folder = run, vae, out_dir / "fidelity"
        self.chance = chance_fidelity(run.control.condition, self.images)
        given = run.control.threshold
        self.threshold = convergence_threshold(run.control.condition, self.chance) if given is None else given
        self.sample = type(run.sample)(**{**vars(run.sample), "steps": run.control.eval_sample_steps,
                                          "guidance_scale": 1.0})

    def path(self, step: int) -> Path:
        """The score file of one evaluation step."""
        return self.folder / f"step-{step:07d}.json"

    def __call__(self, step: int, model: ControlledDiT) -> None:
        """Score the model at `step` (skipped when a resumed run already has that step's file)."""
        if self.path(step).is_file():
            return
        device = next(model.parameters()).device
        seeds = list(range(len(self.labels)))
        chunks = [images for _, images in sample_batches(
            model, self.run.diffusion, self.sample, seeds, self.labels, vae=self.vae,
            vae_scaling=self.run.model.vae_scaling, device=device, progress=False, controls=self.controls)]
        scores = fidelity(self.run.control.condition, self.images, to_uint8(torch.cat(chunks).cpu()))
        write_json(self.path(step), {"step": step, "condition": self.run.control.condition,
                                     "mean": float(scores.mean()), "std": float(scores.std(ddof=1)),
                                     "n": len(scores), "chance": self.chance, "threshold": self.threshold})
        log.info("step %d: %s fidelity %.4f", step, self.run.control.condition, scores.mean())

    def curve(self) -> list[dict]:
        """Every evaluated step's scores, by step."""
        return sorted((read_json(path) for path in self.folder.glob("step-*.json")), key=lambda row: row["step"])


def main(argv: list[str] | None = None) -> None:
    """Parse flags, train the branch with fidelity probes, export it."""
    args = parse_args(argv)
    run = resolve_run(args)
    if args.dry_run:
        print_config(run)
        return
    setup_logging(args.out)
    torch.manual_seed(run.train.seed)
    base = load_dit(run.model.pretrained)
    dataset, vae = load_training_data(run, base)
    image_side = run.data.resolution
    if image_side % base.config.sample_size:
        raise ConfigError(f"data.resolution {image_side} is not a multiple of the base's input side "
                          f"{base.config.sample_size}")
    controlnet = DiTControlNet.from_transformer(base, CHANNELS[run.control.condition], run.control.num_blocks,
                                                image_side // base.config.sample_size)
    model = ControlledDiT(base, controlnet)
    inputs = {"base": input_fingerprint(run.model.pretrained)}
    write_run_config(args.out, run, args.resume, inputs)
    probe = FidelityProbe(run, args.out, vae)
    log.info("ControlNet (%s) of %d blocks on %s: %s trainable of %s params, %d steps of %d, %d probe images",
             run.control.condition, controlnet.config.num_blocks, run.model.pretrained,
             f"{count_parameters(model, trainable_only=True):,}", f"{count_parameters(model):,}", run.train.steps,
             run.train.batch_size, len(probe.labels))
    started = time.perf_counter()
    probe(0, model)
    model, _ = train(run, model, make_loss(run, null_class(base), vae), make_batches(run, dataset), args.out,
                     resume=args.resume, progress=not args.no_progress,
                     inputs=inputs, on_checkpoint=probe)
    curve = probe.curve()
    write_csv(args.out / "fidelity.csv", CURVE_COLUMNS, curve)
    provenance = {"base": run.model.pretrained, "condition": run.control.condition, "dataset": run.data.dataset,
                  "steps": run.train.steps, "chance": probe.chance, "threshold": probe.threshold,
                  "git_commit": git_commit(), "weights": "raw (no EMA: the curve scores the trained weights)"}
    export_controlnet(model.controlnet, args.out / "controlnet", run, provenance)
    write_json(args.out / "summary.json", {
        **provenance, "trainable_parameters": count_parameters(model.controlnet, trainable_only=True),
        "base_parameters": count_parameters(base), "evaluated_steps": [row["step"] for row in curve],
        "wall_seconds_this_invocation": round(time.perf_counter() - started, 1)})
    log.info("exported the ControlNet to %s", args.out / "controlnet")


if __name__ == "__main__":
    run_cli(main)
