"""The amortised upper bound: a conditional diffusion model trained from scratch for one task on all training data.

    python -m deft.amortised --scale mini --task inpaint --out runs/mini/deft/inpaint/amortised-train

DEFT's tables compare with I2SB, a per-task model trained on all of ImageNet (an "upper bound"); its checkpoints
cannot be retrained here, so this is the same idea in the suite's own terms: the backbone's architecture (the DiT
core) with the measurement brought to image space as extra input channels — A†y, plus the mask for inpainting —
trained by conditional denoising score matching on the backbone's whole training split with fresh measurements
every step, from random weights, with the backbone's pre-training recipe. Sampling is the same 100-step DDIM as
DEFT's. Tasks without a pseudo-inverse (phase retrieval, the non-linear blur) have no image-space measurement and are
refused. Writes OUT/model (EMA weights, a diffusers DiT folder), OUT/checkpoints, OUT/stats.jsonl, OUT/summary.json.
"""

from __future__ import annotations

import argparse
import logging
import time

from deft.cli import add_task_args, resolve_task_run
from deft.config import AmortisedConfig
from tunebench.cli import add_training_args, print_config, run_cli, setup_logging

log = logging.getLogger("deft.amortised")


def main(argv: list[str] | None = None) -> None:
    """Parse flags, train the conditional model from scratch, export its EMA weights."""
    parser = argparse.ArgumentParser(prog="python -m deft.amortised", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_task_args(parser)
    add_training_args(parser)
    args = parser.parse_args(argv)
    run = resolve_task_run(args, AmortisedConfig)
    if args.dry_run:
        print_config(run)
        return
    setup_logging(args.out)
    # the model, the data and the training loop import torch and diffusers: only once the flags ask for training
    import torch

    from deft.amortised_model import build_conditional, condition, make_loss
    from deft.operators.tasks import build_operator
    from tunebench.datasets import load_dataset
    from tunebench.io import git_commit, write_json
    from tunebench.model_card import CardFacts
    from tunebench.models import count_parameters, export_dit
    from tunebench.schedule import Schedule
    from tunebench.training import ImageBatches, last_logged, train, wall_time_record, write_run_config

    channels, side = run.data.channels, run.data.resolution
    dataset = load_dataset(run.data.dataset, "train", side, channels, run.data.root)
    torch.manual_seed(run.train.seed)
    model = build_conditional(run, channels)
    schedule = Schedule.linear(run.diffusion)
    probe = build_operator(run.task, torch.zeros(1, dtype=torch.long), side, channels)
    condition(run, probe, probe(torch.zeros(1, channels, side, side)), torch.zeros(1, channels, side, side))
    write_run_config(args.out, run, args.resume)
    log.info("amortised model for %s: %s parameters, %d steps of %d on %d images", run.task.name,
             f"{count_parameters(model):,}", run.train.steps, run.train.batch_size, len(dataset))
    images = ImageBatches(dataset, run.train.batch_size, run.train.seed, run.data.hflip)
    started = time.perf_counter()
    _, ema = train(run, model, make_loss(run, schedule, channels), images.batch,
                   args.out, resume=args.resume, progress=not args.no_progress)
    provenance = {"task": run.task.name, "steps": run.train.steps, "git_commit": git_commit(), "weights": "ema",
                  "parameters": count_parameters(ema)}
    facts = CardFacts(method=f"DEFT's amortised model for `{run.task.name}`: a DiT conditioned on A†y, trained from "
                             "random weights", base_model=None,
                      data=f"`{run.data.dataset}` train split, {len(dataset)} images at {side} px, fresh "
                           "measurements every step", loader="deft.amortised_model.load_conditional(folder)")
    export_dit(ema, args.out / "model", run, extra={**provenance, "final_training": last_logged(args.out)},
               facts=facts)
    write_json(args.out / "summary.json", {**provenance,
                                           **wall_time_record(args.out, time.perf_counter() - started)})


if __name__ == "__main__":
    run_cli(main)
