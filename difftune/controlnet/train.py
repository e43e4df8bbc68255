"""Train a ControlNet branch on a frozen DiT and record its control fidelity over training (Diff-Tuning §4.3).

    python -m difftune.controlnet.train --base assets/mini/source_dit --condition canny --dataset mnist5k \\
        --objective standard --out runs/mini/controlnet/mnist5k/canny/standard/seed0
    python -m difftune.controlnet.train --base assets/mini/source_dit --condition canny --dataset mnist5k \\
        --objective diff_tuning --retention runs/mini/retention \\
        --out runs/mini/controlnet/mnist5k/canny/diff_tuning/seed0

The branch (difftune.controlnet.model) trains on the training split of data.dataset, its condition computed from each
image (difftune.controlnet.conditions), with one of two objectives (difftune.objective; 10% label dropout either way):
`standard` (uniform t, every image a target image) or `diff_tuning` (target t ∝ (t+1)^τ, and 6 of each 32 images from
the retention set, with null labels, t at the mirrored law and conditions computed from them). At step 0 and at every
checkpoint the current (non-EMA) weights sample control.eval_images held-out test images from their conditions (seed i
for image i, the image's label, guidance 1) and score the control fidelity; a resumed run keeps the scores it has.
Writes OUT/config.json, OUT/checkpoints/, OUT/stats.jsonl, OUT/fidelity/step-NNNNNNN.json,
OUT/fidelity.csv (step, score mean and std, chance score, threshold), OUT/controlnet/ (the trained branch,
save_pretrained) and OUT/summary.json.
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import TYPE_CHECKING

from difftune.controlnet.config import CHANNELS, CONDITIONS, OBJECTIVES, ControlTrainConfig
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

if TYPE_CHECKING:
    from difftune.retention_set import RetentionSet

log = logging.getLogger("difftune.controlnet.train")
CURVE_COLUMNS = ("step", "condition", "mean", "std", "n", "chance", "threshold")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The shared config and training flags plus --base, --condition, --dataset, --objective and --retention."""
    parser = argparse.ArgumentParser(prog="python -m difftune.controlnet.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    add_training_args(parser)
    parser.add_argument("--base", help="the frozen DiT folder (sets model.pretrained)")
    parser.add_argument("--condition", choices=CONDITIONS, help="condition (sets control.condition)")
    parser.add_argument("--dataset", help="training and evaluation images (sets data.dataset)")
    methods = ", ".join(f"{name} = {method}" for name, method in OBJECTIVES.items())
    parser.add_argument("--objective", choices=list(OBJECTIVES), help=f"training objective (sets difftune.method: "
                                                                      f"{methods})")
    parser.add_argument("--retention", help="retention set folder of the diff_tuning objective (sets "
                                            "difftune.retention; made by `python -m difftune.retention`)")
    return parser.parse_args(argv)


def resolve_run(args: argparse.Namespace) -> ControlTrainConfig:
    """Paper defaults < scale < YAML files < shortcut flags < --set."""
    shortcuts = flag_overrides((args.base, "model", "pretrained"), (args.dataset, "data", "dataset"),
                               (args.condition, "control", "condition"),
                               (OBJECTIVES.get(args.objective), "difftune", "method"),
                               (args.retention, "difftune", "retention"))
    run = config_from_args(args, ControlTrainConfig, shortcuts=shortcuts)
    if not run.model.pretrained:
        raise ConfigError("a ControlNet needs a frozen base model: pass --base FOLDER (or model.pretrained)")
    if run.difftune.objective().retention and not run.difftune.retention:
        raise ConfigError(f"objective {run.objective()!r} replays a retention set: pass --retention FOLDER "
                          "(made by `python -m difftune.retention` from the base)")
    return run


def make_batches(run: ControlTrainConfig, dataset, retention: RetentionSet | None):
    """batches(step) → the objective's batch (difftune.objective.mixed_batches) plus the condition of every image:
    `controls` of the target images and `retention_controls` of the retention images, each computed from its own
    image (docs/difftune.md says why)."""
    import torch

    from difftune.controlnet.conditions import make_conditions
    from difftune.objective import mixed_batches
    from tunebench.io import to_uint8

    images = mixed_batches(run, dataset, retention)

    def conditions(pixels: torch.Tensor) -> torch.Tensor:
        """The condition images of a float [-1, 1] B×C×H×W batch."""
        return torch.from_numpy(make_conditions(run.control.condition, to_uint8(pixels)))

    def batches(step: int) -> dict:
        """One step's batch (a pure function of the step)."""
        batch = images(step)
        batch["controls"] = conditions(batch["images"])
        if "retention" in batch:
            batch["retention_controls"] = conditions(batch["retention"])
        return batch

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
    from difftune.objective import batch_sizes, make_objective
    from difftune.retention_set import RetentionSet
    from tunebench.io import git_commit, input_fingerprint, write_csv, write_json
    from tunebench.model_card import CardFacts
    from tunebench.models import count_parameters, load_dit, null_class
    from tunebench.pretraining import load_training_data
    from tunebench.training import last_logged, train, wall_time_record, write_run_config

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
    retention = None
    if run.difftune.objective().retention:
        retention = RetentionSet(run.difftune.retention, run.data.resolution, run.data.channels,
                                 run.difftune.retention_size)
        inputs["retention"] = input_fingerprint(run.difftune.retention)
    write_run_config(args.out, run, args.resume, inputs)
    probe = FidelityProbe(run, args.out, vae)
    n_target, n_retention = batch_sizes(run)
    log.info("ControlNet (%s, objective %s, seed %d) of %d blocks on %s: %s trainable of %s params, %d steps of "
             "%d target + %d retention images, %d probe images", run.control.condition, run.objective(),
             run.train.seed, controlnet.config.num_blocks, run.model.pretrained,
             f"{count_parameters(model, trainable_only=True):,}", f"{count_parameters(model):,}", run.train.steps,
             n_target, n_retention, len(probe.labels))
    started = time.perf_counter()
    probe(0, model)
    model, _ = train(run, model, make_objective(run, null_class(base), vae), make_batches(run, dataset, retention),
                     args.out, resume=args.resume, progress=not args.no_progress, inputs=inputs,
                     on_checkpoint=probe)
    curve = probe.curve()
    write_csv(args.out / "fidelity.csv", CURVE_COLUMNS, curve)
    provenance = {"base": run.model.pretrained, "condition": run.control.condition, "dataset": run.data.dataset,
                  "objective": run.objective(), "method": run.difftune.method, "seed": run.train.seed,
                  "retention": run.difftune.retention, "retention_images": len(retention) if retention else 0,
                  "target_per_batch": n_target, "retention_per_batch": n_retention, "steps": run.train.steps,
                  "chance": probe.chance, "threshold": probe.threshold, "git_commit": git_commit(),
                  "weights": "raw (no EMA: the curve scores the trained weights)"}
    facts = CardFacts(method=f"ControlNet branch ({controlnet.config.num_blocks} blocks, `{run.control.condition}` "
                             f"condition) trained with `{run.objective()}` on the frozen base DiT",
                      base_model=run.model.pretrained,
                      data=f"`{run.data.dataset}` train split, {len(dataset)} images at {image_side} px, with their "
                           f"`{run.control.condition}` conditions",
                      loader="difftune.controlnet.model.load_controlnet(folder)")
    export_controlnet(model.controlnet, args.out / "controlnet", run,
                      {**provenance, "final_training": last_logged(args.out)}, facts=facts)
    write_json(args.out / "summary.json", {
        **provenance, "trainable_parameters": count_parameters(model.controlnet, trainable_only=True),
        "base_parameters": count_parameters(base), "evaluated_steps": [row["step"] for row in curve],
        **wall_time_record(args.out, time.perf_counter() - started)})
    log.info("exported the ControlNet to %s", args.out / "controlnet")


if __name__ == "__main__":
    run_cli(main)
