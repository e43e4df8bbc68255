"""Train a protein model on prepared Cα chains: the unconditional prior, a DEFT head on the frozen prior, or the
amortised conditional model from scratch.

    python -m deft.protein.train prior --scale mini --data runs/mini/protein/data --out runs/mini/protein/prior
    python -m deft.protein.train head --scale mini --data runs/mini/protein/data \\
        --prior runs/mini/protein/prior/model --fraction 0.04 --out runs/mini/protein/deft-4
    python -m deft.protein.train amortised --scale mini --data runs/mini/protein/data --out runs/mini/protein/amortised

Writes OUT/config.json (resolved), OUT/checkpoints/ (resumable: model, EMA, optimiser, step, RNG), OUT/stats.jsonl,
OUT/model/ (the trained weights, save_pretrained; DEFT samples with them as for images), OUT/model_ema/ and
OUT/summary.json (exact parameter counts, the head's share of the prior, wall time).
"""

from __future__ import annotations

import argparse
import logging
import time

from deft.protein.config import PRIOR_ARCHITECTURES, AmortisedRun, HeadRun, PriorRun
from tunebench.cli import add_config_args, add_training_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import ConfigError

log = logging.getLogger("deft.protein.train")
STAGES = {"prior": PriorRun, "head": HeadRun, "amortised": AmortisedRun}


def stage_method(stage: str, run) -> str:
    """What a stage trains, for the model card (the prior and the amortised model name `prior.arch`)."""
    arch = PRIOR_ARCHITECTURES[run.prior.arch]
    if stage == "prior":
        triangle = f", triangular pair updates of {run.prior.triangle} channels" if run.prior.triangle else ""
        return f"unconditional Cα-backbone prior ({arch}{triangle}, ε-prediction, cosine DDPM)"
    if stage == "head":
        return "DEFT h-transform head for motif scaffolding on the frozen prior"
    return f"amortised motif-scaffolding model ({arch} with motif inputs) trained from random weights"


def build_model(stage: str, run, args):
    """(model to train, frozen prior or None, sizes for the summary, fingerprints of the input models)."""
    import torch

    from deft.protein.egnn import build_head_for_fraction
    from deft.protein.models import build_prior, head_name, length_unit, load_prior
    from tunebench.io import input_fingerprint
    from tunebench.models import count_parameters
    from tunebench.speed import prepare_model

    torch.manual_seed(run.train.seed)
    if stage != "head":
        model = build_prior(run, motif_inputs=stage == "amortised")
        return model, None, {"parameters": count_parameters(model)}, {}
    if not args.prior:
        raise ConfigError("the head trains on a frozen prior: pass --prior FOLDER (python -m deft.protein.train prior)")
    fractions = run.head.fraction_list()
    fraction = args.fraction if args.fraction is not None else fractions[0]
    # train.compile compiles every network the training step runs: the head (tunebench.training) and the prior
    prior = prepare_model(load_prior(args.prior), compile_model=run.train.compile)
    prior_parameters = count_parameters(prior)
    head = build_head_for_fraction(fraction, prior_parameters, run.head.layers, run.prior.relpos_max,
                                   length_unit(run), run.head.init_scaling_bias)
    sizes = {"method": head_name(fraction), "target_fraction": fraction, "parameters": count_parameters(head),
             "prior_parameters": prior_parameters, "head_hidden": head.config.hidden}
    sizes["head_fraction"] = sizes["parameters"] / prior_parameters
    return head, prior, sizes, {"prior": input_fingerprint(args.prior)}


def main(argv: list[str] | None = None) -> None:
    """Parse flags, train, export."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=sorted(STAGES), help="which model to train")
    add_config_args(parser)
    add_training_args(parser)
    parser.add_argument("--data", required=True, help="prepared chains (python -m deft.protein.prepare --out DIR)")
    parser.add_argument("--prior", help="head only: the frozen prior's model folder")
    parser.add_argument("--fraction", type=float, help="head only: size relative to the prior (default: the first "
                                                       "of head.fractions)")
    args = parser.parse_args(argv)
    run = config_from_args(args, STAGES[args.stage])
    if args.dry_run:
        print_config(run)
        return
    # Here, not at the top: --help and --dry-run need no torch.
    from deft.protein.batches import CropBatches
    from deft.protein.chain_set import load_prepared
    from deft.protein.diffusion import protein_schedule
    from deft.protein.objectives import make_loss
    from tunebench.io import git_commit, input_fingerprint, write_json
    from tunebench.model_card import CardFacts
    from tunebench.models import export_pretrained
    from tunebench.speed import compute_record
    from tunebench.training import last_logged, train, wall_time_record, write_run_config

    setup_logging(args.out)
    chains = load_prepared(args.data)["train"]
    model, prior, sizes, inputs = build_model(args.stage, run, args)
    inputs["data"] = input_fingerprint(args.data)
    write_run_config(args.out, run, args.resume, inputs)
    log.info("%s: %s parameters, %d steps of %d crops from %d training chains", args.stage,
             f"{sizes['parameters']:,}", run.train.steps, run.train.batch_size, len(chains))
    batches = CropBatches(chains, run.data, run.train.batch_size, run.train.seed)
    loss_fn = make_loss(args.stage, run, protein_schedule(run.diffusion), prior)
    started = time.perf_counter()
    trained, ema = train(run, model, loss_fn, lambda step: {"step": step, "batches": batches}, args.out,
                         resume=args.resume, progress=not args.no_progress, inputs=inputs)
    seconds = time.perf_counter() - started
    provenance = {"stage": args.stage, "steps": run.train.steps, "data": args.data, "prior": args.prior,
                  "git_commit": git_commit(), **sizes}
    facts = CardFacts(method=stage_method(args.stage, run), base_model=args.prior if args.stage == "head" else None,
                      data=f"crops of {len(chains)} training chains of {args.data}",
                      loader="deft.protein.models.load_prior(folder)" if args.stage == "prior"
                      else f"deft.protein.models.load_conditional(folder, {args.stage!r})")
    record = {**provenance, "final_training": last_logged(args.out)}
    export_pretrained(trained, args.out / "model", run, {**record, "weights": "trained"}, facts=facts)
    export_pretrained(ema, args.out / "model_ema", run, {**record, "weights": "ema"}, facts=facts)
    write_json(args.out / "summary.json", {**provenance, **wall_time_record(args.out, seconds), **compute_record()})
    log.info("exported %s to %s", args.stage, args.out / "model")


if __name__ == "__main__":
    run_cli(main)
