"""How good is the protein prior? Unconditional samples of every kept checkpoint (or of one exported prior) against
crops of the training chains: valid Cα–Cα bonds, clash-free samples, radius of gyration and P-SEA secondary
structure, each with a 95% interval (docs/protein.md, "Prior quality").

    python -m deft.protein.prior_quality --run runs/mini/protein/prior --data runs/mini/protein/data --scale mini \\
        --out-csv prior_quality.csv --out-json prior_quality.json --figure prior_quality.png
    python -m deft.protein.prior_quality --model runs/mini/protein/prior/model --data runs/mini/protein/data \\
        --out-csv ... --out-json ...

Samples use the sampler settings of the motif table at --scale (sample.steps, sample.eta, sample.noise_scale);
sample k uses seed k. The reference row (step "data") scores as many crops of the training split, of the same length.
OUT-CSV gets one row per prior and is rewritten after each; steps it already holds are skipped, so a rerun computes
only what is missing. OUT-JSON holds the last prior's row (top level) and the data row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deft.protein.config import ProteinConfig
from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import ConfigError, to_dict


def main(argv: list[str] | None = None) -> None:
    """Parse flags, score the priors and the training crops, write the table, summary and figure."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.prior_quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a prior's training folder (python -m deft.protein.train prior "
                                                 "--out RUN): one row per kept checkpoint")
    source.add_argument("--model", type=Path, help="an exported prior (save_pretrained folder): one row")
    parser.add_argument("--data", required=True, type=Path, help="prepared chains (python -m deft.protein.prepare)")
    add_config_args(parser)
    parser.add_argument("--samples", type=int, default=200, help="samples per prior and training crops (default 200)")
    parser.add_argument("--length", type=int, help="residues per sample and crop (default: problems.length of the "
                                                   "scale, the motif table's scaffold length; 48 at mini)")
    parser.add_argument("--out-csv", required=True, type=Path, help="the curve: one row per prior and the data row")
    parser.add_argument("--out-json", required=True, type=Path,
                        help="the last prior's row (top level) and the data row")
    parser.add_argument("--figure", type=Path, help="PNG of valid bonds and clash-free samples against step")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    run = config_from_args(args, ProteinConfig)
    if args.dry_run:
        print_config(run)
        return
    length = args.length if args.length is not None else run.problems.length
    if args.samples < 2 or length < 2:
        raise ConfigError(f"--samples {args.samples} and --length {length} must both be at least 2 (a spread and an "
                          "interval need two samples, a bond two residues)")
    setup_logging()
    # Here, not at the top: --help and --dry-run need no torch.
    from deft.protein.chain_set import load_prepared
    from deft.protein.quality import DATA_STEP
    from deft.protein.quality_curve import model_checkpoint, run_checkpoints, update_curve
    from tunebench.io import git_commit, write_json

    checkpoints = run_checkpoints(args.run) if args.run else [model_checkpoint(args.model)]
    chains = load_prepared(args.data)["train"]
    rows = update_curve(args.out_csv, checkpoints, chains, str(args.data / "chains.npz"), run, args.samples, length,
                        progress=not args.no_progress)
    by_step = {row["step"]: row for row in rows}
    last = checkpoints[-1].step
    # The last prior's figures at the top level: what a pinned asset's manifest records as its quality.
    write_json(args.out_json, {**by_step[last], "data": by_step[DATA_STEP],
                               "source": str(args.run or args.model), "data_folder": str(args.data),
                               "success_criteria": to_dict(run.success), "git_commit": git_commit()})
    if args.figure:
        from deft.protein.quality_figure import plot_quality_curve

        plot_quality_curve(rows, args.figure)
    prior, data = by_step[last], by_step[DATA_STEP]
    print(f"prior step {last}: valid bonds {prior['valid_bonds']:.3f} (data {data['valid_bonds']:.3f}), clash-free "
          f"{prior['clash_free']:.3f} (data {data['clash_free']:.3f}) -> {args.out_csv}")


if __name__ == "__main__":
    run_cli(main)
