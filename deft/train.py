"""Train a DEFT h-transform head for one inverse problem on top of a frozen unconditional diffusion model.

    python -m deft.train --scale mini --backbone runs/mini/uncond/model --task inpaint --out runs/mini/deft/inpaint/head

Only the head trains: the backbone's weights are frozen and never receive gradients. Writes OUT/config.json
(resolved), OUT/checkpoints/ (resumable: head, EMA, optimiser, step, RNG), OUT/stats.jsonl, OUT/head/ (the trained
weights, what DEFT samples with, as in the official code), OUT/head_ema/ (the EMA weights) and OUT/summary.json
(exact parameter counts of head and backbone, wall time).
"""

from __future__ import annotations

import argparse
import logging
import time

from deft.cli import add_deft_args, resolve_deft
from tunebench.cli import add_training_args, print_config, run_cli, setup_logging
from tunebench.config import ConfigError

log = logging.getLogger("deft.train")


def main(argv: list[str] | None = None) -> None:
    """Parse flags, train the head, export it."""
    parser = argparse.ArgumentParser(prog="python -m deft.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_deft_args(parser)
    add_training_args(parser)
    args = parser.parse_args(argv)
    run = resolve_deft(args)
    if args.dry_run:
        print_config(run)
        return
    setup_logging(args.out)
    # the models and the training loop import torch and diffusers: only once the flags ask for training
    import torch

    from deft.backbone import load_backbone
    from deft.conditioning import stack_channels
    from deft.data import finetune_set
    from deft.head import build_head
    from deft.objective import make_deft_loss
    from deft.operators.tasks import build_operator
    from tunebench.io import git_commit, input_fingerprint, write_json
    from tunebench.model_card import CardFacts
    from tunebench.models import count_parameters, export_pretrained
    from tunebench.schedule import Schedule
    from tunebench.speed import compute_record
    from tunebench.training import ImageBatches, last_logged, train, wall_time_record, write_run_config

    backbone = load_backbone(run.model.pretrained, chunk=run.sample.compute_chunk)
    channels, side = backbone.channels, backbone.sample_size
    if (side, channels) != (run.data.resolution, run.data.channels):
        raise ConfigError(f"the backbone takes {channels}×{side}² images but data.resolution={run.data.resolution}, "
                          f"data.channels={run.data.channels}; make them agree")
    finetune = finetune_set(run)
    torch.manual_seed(run.train.seed)
    head = build_head(run.head, stack_channels(run.task.operator, channels, run.head), channels, side)
    sizes = {"head_parameters": count_parameters(head), "backbone_parameters": backbone.parameters()}
    sizes["head_fraction"] = sizes["head_parameters"] / sizes["backbone_parameters"]
    inputs = {"backbone": input_fingerprint(run.model.pretrained)}
    write_run_config(args.out, run, args.resume, inputs)
    log.info("DEFT head for %s: %s parameters (%.1f%% of the %s-parameter backbone), %d steps of %d on %d images",
             run.task.name, f"{sizes['head_parameters']:,}", 100 * sizes["head_fraction"],
             f"{sizes['backbone_parameters']:,}", run.train.steps, run.train.batch_size, len(finetune))
    images = ImageBatches(finetune, run.train.batch_size, run.train.seed, run.data.hflip)
    started = time.perf_counter()
    loss_fn = make_deft_loss(run, backbone, Schedule.linear(run.diffusion),
                             lambda ids: build_operator(run.task, ids, side, channels))
    trained, ema = train(run, head, loss_fn,
                         images.batch, args.out, resume=args.resume,
                         progress=not args.no_progress, inputs=inputs)
    seconds = time.perf_counter() - started
    provenance = {"task": run.task.name, "backbone": run.model.pretrained, "steps": run.train.steps,
                  "git_commit": git_commit(), **sizes}
    facts = CardFacts(method=f"DEFT h-transform head for `{run.task.name}` ({100 * sizes['head_fraction']:.1f}% of "
                             "the frozen backbone), trained with the conditional denoising loss",
                      base_model=run.model.pretrained,
                      data=f"{len(finetune)} fine-tuning images of `{run.data.dataset}` at {side} px, fresh "
                           "measurements every step", loader="deft.reconstruction.load_head(folder)")
    record = {**provenance, "final_training": last_logged(args.out)}
    export_pretrained(trained, args.out / "head", run, {**record, "weights": "trained"}, facts=facts)
    export_pretrained(ema, args.out / "head_ema", run, {**record, "weights": "ema"}, facts=facts)
    write_json(args.out / "summary.json", {**provenance, **wall_time_record(args.out, seconds), **compute_record()})
    log.info("exported the head to %s", args.out / "head")


if __name__ == "__main__":
    run_cli(main)
