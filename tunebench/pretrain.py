"""Pre-train (or continue training) a class-conditional DiT on a registered dataset, e.g. the mini source domain.

    python -m tunebench.pretrain --scale mini --out runs/mini/source

Writes OUT/config.json (resolved), OUT/checkpoints/ (resumable), OUT/stats.jsonl, OUT/model/ (the EMA weights as a
diffusers save_pretrained folder, what DiT samples from) and OUT/summary.json (time, steps/s, parameter count).
"""

from __future__ import annotations

import argparse
import logging
import time

from tunebench.cli import add_config_args, add_training_args, config_from_args, print_config, run_cli, setup_logging

log = logging.getLogger("tunebench.pretrain")


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
    # Here, not at the top: --help and --dry-run need no torch.
    import torch

    from tunebench.datasets import class_names_of
    from tunebench.io import git_commit, input_fingerprint, is_main_process, write_json
    from tunebench.model_card import CardFacts
    from tunebench.models import count_parameters, export_dit, null_class, weights_sha256
    from tunebench.pretraining import load_training_data, make_loss, make_model
    from tunebench.speed import compute_record
    from tunebench.training import ImageBatches, last_logged, train, wall_time_record, write_run_config

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
    provenance = {"dataset": run.data.dataset, "class_names": class_names_of(dataset),
                  "steps": run.train.steps, "git_commit": git_commit(), "weights": "ema"}
    facts = CardFacts(method="DiT pre-training (ε-MSE + VLB loss, classifier-free label dropout)",
                      base_model=run.model.pretrained,
                      data=f"`{run.data.dataset}` train split, {len(dataset)} images at {run.data.resolution} px",
                      loader="tunebench.models.load_dit(folder)")
    exported = export_dit(ema, args.out / "model", run, extra={**provenance, "final_training": last_logged(args.out)},
                          facts=facts)
    if not is_main_process():
        return  # rank 0 exported the model and writes its summary
    write_json(args.out / "summary.json", {
        **provenance, "parameters": count_parameters(ema), "weights_sha256": weights_sha256(exported),
        **wall_time_record(args.out, seconds), **compute_record()})
    log.info("exported EMA model to %s", args.out / "model")


if __name__ == "__main__":
    run_cli(main)
