"""Fine-tune a pre-trained DiT on a downstream dataset: Diff-Tuning, standard fine-tuning, the ablations, PEFT variants.

    python -m difftune.retention --model runs/mini/source/model --out runs/mini/retention
    python -m difftune.finetune --pretrained runs/mini/source/model --dataset mnist5k --method diff_tuning \\
        --retention runs/mini/retention --out runs/mini/finetune/mnist5k/diff_tuning

Methods (--method): full_ft, diff_tuning, retention_only, tweight_only; --peft none|bitfit|difffit|lora combines
with any of them. Downstream class k starts from the pre-trained label row k (the official code keeps ImageNet's
1001-row table the same way), so the dataset may have at most model.num_classes classes. Writes OUT/config.json,
OUT/checkpoints/ (resumable), OUT/stats.jsonl, OUT/model/ (EMA weights, PEFT merged: a plain diffusers DiT) and
OUT/summary.json. `--start-from CHECKPOINT` (with `--set train.steps=N`) continues a shorter run of the same config
to N steps, as the fine-tuning-length study does (docs/difftune.md).
"""

from __future__ import annotations

import argparse
import logging
import time

from difftune.config import METHODS, PEFT_METHODS, FineTuneConfig
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

log = logging.getLogger("difftune.finetune")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The CLI flags: the shared config flags plus shortcuts for the common difftune keys."""
    parser = argparse.ArgumentParser(prog="python -m difftune.finetune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    add_training_args(parser)
    parser.add_argument("--pretrained", help="pre-trained model folder (sets model.pretrained)")
    parser.add_argument("--dataset", help="downstream dataset (sets data.dataset)")
    parser.add_argument("--method", choices=list(METHODS), help="objective (sets difftune.method)")
    parser.add_argument("--peft", choices=PEFT_METHODS, help="trained weights (sets difftune.peft)")
    parser.add_argument("--retention", help="retention set folder (sets difftune.retention)")
    parser.add_argument("--start-from", metavar="CHECKPOINT",
                        help="while --out holds no checkpoint, continue from this checkpoint-NNNNNNN folder of a "
                             "shorter run with the same config (train.steps aside); the run then trains on to "
                             "train.steps exactly as one uninterrupted run would (a constant learning rate only: "
                             "the checkpoint check refuses a linear schedule's other length)")
    return parser.parse_args(argv)


def resolve_run(args: argparse.Namespace) -> FineTuneConfig:
    """Paper defaults < scale < YAML files < shortcut flags < --set."""
    shortcuts = flag_overrides((args.pretrained, "model", "pretrained"), (args.dataset, "data", "dataset"),
                               (args.method, "difftune", "method"), (args.peft, "difftune", "peft"),
                               (args.retention, "difftune", "retention"))
    run = config_from_args(args, FineTuneConfig, shortcuts=shortcuts)
    if not run.model.pretrained:
        raise ConfigError("fine-tuning needs a pre-trained model: pass --pretrained FOLDER (or model.pretrained)")
    if run.difftune.objective().retention and not run.difftune.retention:
        raise ConfigError(f"method {run.difftune.method!r} replays a retention set: pass --retention FOLDER "
                          "(made by `python -m difftune.retention`)")
    return run


def main(argv: list[str] | None = None) -> None:
    """Parse flags, fine-tune, export the EMA model."""
    args = parse_args(argv)
    run = resolve_run(args)
    if args.dry_run:
        print_config(run)
        return
    # Here, not at the top: --help and --dry-run need no torch.
    import torch

    from difftune.objective import batch_sizes, make_objective, mixed_batches
    from difftune.peft import apply_peft, merged_copy
    from difftune.retention_set import RetentionSet
    from tunebench.datasets import class_names_of
    from tunebench.io import git_commit, input_fingerprint, is_main_process, write_json
    from tunebench.model_card import CardFacts
    from tunebench.models import count_parameters, export_dit, load_dit, null_class, weights_sha256
    from tunebench.pretraining import load_training_data
    from tunebench.speed import compute_record
    from tunebench.training import last_logged, resume_or_start, train, wall_time_record, write_run_config

    setup_logging(args.out)
    torch.manual_seed(run.train.seed)
    model = load_dit(run.model.pretrained)
    dataset, vae = load_training_data(run, model)
    retention = None
    if run.difftune.objective().retention:
        retention = RetentionSet(run.difftune.retention, run.data.resolution, run.data.channels,
                                 run.difftune.retention_size)
    apply_peft(model, run.difftune)
    trainable = count_parameters(model, trainable_only=True)
    inputs = {"pretrained": input_fingerprint(run.model.pretrained)}
    if retention is not None:
        inputs["retention"] = input_fingerprint(run.difftune.retention)
    resume = resume_or_start(args.out, args.resume, args.start_from)
    write_run_config(args.out, run, resume, inputs)
    n_target, n_retention = batch_sizes(run)
    log.info("%s (peft %s) on %s (%d images): %s of %s params train, %d steps of %d target + %d retention",
             run.difftune.method, run.difftune.peft, run.data.dataset, len(dataset), f"{trainable:,}",
             f"{count_parameters(model):,}", run.train.steps, n_target, n_retention)
    started = time.perf_counter()
    _, ema = train(run, model, make_objective(run, null_class(model), vae), mixed_batches(run, dataset, retention),
                   args.out, resume=resume, progress=not args.no_progress, inputs=inputs)
    seconds = time.perf_counter() - started
    provenance = {"dataset": run.data.dataset, "class_names": class_names_of(dataset),
                  "steps": run.train.steps, "method": run.difftune.method, "peft": run.difftune.peft,
                  "pretrained": run.model.pretrained, "retention": run.difftune.retention,
                  "retention_kind": retention.manifest["kind"] if retention else None,
                  "retention_images": len(retention) if retention else 0,
                  "git_commit": git_commit(), "weights": "ema"}
    merged = merged_copy(ema)
    facts = CardFacts(method=f"fine-tuning with `{run.difftune.method}` (PEFT `{run.difftune.peft}`, merged into a "
                             "plain DiT)" + (f", replaying {provenance['retention_images']} retention images "
                                             f"({provenance['retention_kind']})" if retention else ""),
                      base_model=run.model.pretrained,
                      data=f"`{run.data.dataset}` train split, {len(dataset)} images at {run.data.resolution} px",
                      loader="tunebench.models.load_dit(folder)")
    exported = export_dit(merged, args.out / "model", run,
                          extra={**provenance, "final_training": last_logged(args.out)}, facts=facts)
    if not is_main_process():
        return  # rank 0 exported the model and writes its summary
    write_json(args.out / "summary.json", {
        **provenance, "trainable_parameters": trainable, "parameters": count_parameters(merged),
        "weights_sha256": weights_sha256(exported),
        "target_per_batch": n_target, "retention_per_batch": n_retention,
        **wall_time_record(args.out, seconds), **compute_record()})
    log.info("exported EMA model to %s", args.out / "model")


if __name__ == "__main__":
    run_cli(main)
