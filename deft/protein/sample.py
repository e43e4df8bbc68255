"""Sample scaffolds for every motif problem with one method (see `deft.protein.samplers`).

    python -m deft.protein.sample deft --scale mini --problems runs/mini/protein/problems \\
        --prior runs/mini/protein/prior/model --model runs/mini/protein/deft-4/model \\
        --out runs/mini/protein/samples/deft-4
    python -m deft.protein.sample dps --scale mini --problems ... --prior ... --out ...

DPS first sweeps `dps.scales` on `dps.sweep_samples` samples per problem (seeds disjoint from the final ones) and
keeps the scale with the most successes (ties: lower mean motif RMSD), as the paper tuned DPS over five runs.
Writes OUT/samples.npz (coords: problems × samples × residues × 3 in Å; seeds), OUT/pdb/PROBLEM.pdb (every sample of
a problem as one Cα MODEL, motif residues at B-factor 1; deft.protein.pdb_out), OUT/stats.json (cost per sample,
the sweep; with sample.compile, the compilation's seconds, spent before the clock of the cost
starts) and OUT/config.json. Sample k of problem p uses seed p·10⁶ + k, the same for every method.
"""

from __future__ import annotations

import argparse
import logging
import time

from deft.protein.config import METHODS, ProteinConfig
from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import ConfigError, to_dict

log = logging.getLogger("deft.protein.sample")


def main(argv: list[str] | None = None) -> None:
    """Parse flags, sample every problem, save."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=METHODS, help="sampler")
    add_config_args(parser)
    parser.add_argument("--problems", required=True, help="problems folder (python -m deft.protein.problems)")
    parser.add_argument("--prior", required=True, help="the frozen prior's model folder")
    parser.add_argument("--model", help="deft: the head's model folder; amortised: the amortised model folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    run = config_from_args(args, ProteinConfig)
    if args.dry_run:
        print_config(run)
        return
    if args.method in ("deft", "amortised") and not args.model:
        raise ConfigError(f"method {args.method} needs --model FOLDER (python -m deft.protein.train)")
    setup_logging(args.out)
    # the models and samplers import torch: only once the flags ask for samples
    from deft.protein.models import load_conditional, load_prior
    from deft.protein.motif_problems import load_problems
    from deft.protein.motif_sampling import dps_sweep, sample_problems, warm_up
    from deft.protein.pdb_out import write_models
    from tunebench.io import git_commit, save_npz, write_json
    from tunebench.speed import prepare_model

    problems = load_problems(args.problems)
    prior = prepare_model(load_prior(args.prior), compile_model=run.sample.compile, compile_key="sample.compile")
    model = load_conditional(args.model, "head" if args.method == "deft" else "amortised") if args.model else None
    if model is not None:
        prepare_model(model, compile_model=run.sample.compile, compile_key="sample.compile")
    stats: dict = {"method": args.method, "prior": args.prior, "model": args.model, "git_commit": git_commit()}
    if run.sample.compile:
        started = time.perf_counter()
        warm_up(args.method, prior, run, problems[0], model)
        stats["warm_up_seconds"] = round(time.perf_counter() - started, 1)
        log.info("compiled the networks of %s in %.0f s", args.method, stats["warm_up_seconds"])
    scale = None
    if args.method == "dps":
        scale, stats["dps_sweep"] = dps_sweep(prior, run, problems, not args.no_progress)
        stats["dps_scale"] = scale
    coords, seeds, cost = sample_problems(args.method, prior, run, problems, run.problems.samples, model=model,
                                          dps_scale=scale, progress=not args.no_progress)
    save_npz(f"{args.out}/samples.npz", coords=coords, seeds=seeds)
    for problem, scaffolds in zip(problems, coords):
        write_models(f"{args.out}/pdb/{problem.name}.pdb", list(scaffolds), problem.mask() > 0,
                     f"{args.method} scaffolds of motif problem {problem.name}, one MODEL per seed")
    write_json(f"{args.out}/stats.json", {**stats, **cost, "problems": len(problems),
                                          "samples_per_problem": run.problems.samples})
    write_json(f"{args.out}/config.json", to_dict(run))
    log.info("%s: %d problems × %d samples, %.3f s per sample", args.method, len(problems), run.problems.samples,
             cost["seconds_per_sample"])


if __name__ == "__main__":
    run_cli(main)
