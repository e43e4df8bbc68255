"""Train a ControlNet branch on a frozen DiT and record its control fidelity over training (Diff-Tuning §4.3).

    python -m difftune.controlnet.train --base runs/mini/source/model --condition canny \\
        --out runs/mini/controlnet/mnist5k/canny/pretrained
    python -m difftune.controlnet.train --base runs/mini/finetune/mnist5k/diff_tuning/model --condition canny \\
        --out runs/mini/controlnet/mnist5k/canny/diff_tuning

The branch (difftune.controlnet.model) learns the standard denoising loss (uniform t, 10% label dropout) on the training
split of data.dataset, its condition computed from each image (difftune.controlnet.conditions). At step 0 and at every
checkpoint the current (non-EMA) weights sample control.eval_images held-out test images from their conditions (seed i
for image i, the image's own label, guidance 1) and score the control fidelity; a resumed run keeps the scores it has.
Writes OUT/config.json, OUT/checkpoints/, OUT/stats.jsonl, OUT/fidelity/step-NNNNNNN.json,
OUT/fidelity.csv (step, score mean and std, chance score, threshold), OUT/controlnet/ (the trained branch,
save_pretrained) and OUT/summary.json.
"""

from __future__ import annotations

import argparse
import logging
import time

from difftune.controlnet.config import CHANNELS, CONDITIONS, ControlTrainConfig
from tunebench.cli import (
    add_config_args,
    add_training_args,
    config_from_args,
    flag_overrides,
    print_config,
    run_cli,
    setup_logging,
)
from tunebench.config import ConfigError

log = logging.getLogger("difftune.controlnet.train")
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
    import torch

    from difftune.controlnet.conditions import make_conditions
    from tunebench.io import to_uint8
    from tunebench.training import ImageBatches

    source = ImageBatches(dataset, run.train.batch_size, run.train.seed, hflip=False)

    def batches(step: int) -> dict:
        """One step's batch (a pure function of the step)."""
        batch = source.batch(step)
        controls = torch.from_numpy(make_conditions(run.control.condition, to_uint8(batch["images"])))
        return {**batch, "controls": controls}

    return batches


def main(argv: list[str] | None = None) -> None:
    """Parse flags, train the branch with fidelity probes, export it."""
    args = parse_args(argv)
    run = resolve_run(args)
    if args.dry_run:
        print_config(run)
        return
    setup_logging(args.out)
    # the models, data and training loop import torch, diffusers and scikit-image: only once the flags ask to train
    import torch

    from difftune.controlnet.fidelity_probe import FidelityProbe
    from difftune.controlnet.model import ControlledDiT, DiTControlNet, export_controlnet
    from tunebench.io import git_commit, input_fingerprint, write_csv, write_json
    from tunebench.models import count_parameters, load_dit, null_class
    from tunebench.pretraining import load_training_data, make_loss
    from tunebench.training import train, write_run_config

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
