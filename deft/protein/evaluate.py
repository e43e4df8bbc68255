"""Score one method's scaffolds on every motif problem and append tidy result rows.

    python -m deft.protein.evaluate --problems runs/mini/protein/problems --samples runs/mini/protein/samples/deft-4 \\
        --method deft-4 --train-summary runs/mini/protein/deft-4/summary.json \\
        --results runs/mini/metrics/protein/deft-4.csv

Per problem (the `dataset` column): success rate and solved (≥ 1 success, the paper's convention), the share with
the motif placed (motif RMSD under the threshold, geometry aside), median motif RMSD, valid-bond and clash-free
fractions, P-SEA helix/strand/coil fractions, radius of gyration (and the native window's), pairwise TM-score diversity
of the first `TM_SAMPLES` samples, and the method's cost. Success is the folding-free stand-in of `success` (motif
RMSD, Cα–Cα bonds, clashes). The paper's scRMSD (ProteinMPNN + ESMFold) is added by a --designability plug-in with
local weights (deft.protein.designability); without one its rows are written empty with the reason. Also writes
--per-sample CSV when given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deft.protein.config import ProteinConfig
from tunebench.cli import run_cli
from tunebench.config import ConfigError, from_dict


def main(argv: list[str] | None = None) -> None:
    """Parse flags, score, append rows."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", required=True, type=Path, help="problems folder")
    parser.add_argument("--samples", required=True, type=Path, help="one method's output of deft.protein.sample")
    parser.add_argument("--method", required=True, help="method name in the results (e.g. deft-4, dps)")
    parser.add_argument("--train-summary", type=Path, help="summary.json of the method's trained model, if any")
    parser.add_argument("--results", required=True, type=Path, help="results CSV to append to")
    parser.add_argument("--per-sample", type=Path, help="optional CSV of every sample's metrics")
    parser.add_argument("--designability", metavar="MODULE:FACTORY",
                        help="scRMSD plug-in (deft.protein.designability); without it the metric is skipped")
    parser.add_argument("--designability-weights", type=Path, help="local weights folder for the plug-in")
    args = parser.parse_args(argv)
    # Here, not at the top: --help needs no torch.
    import numpy as np

    from benchmarks.results import append_rows
    from deft.protein.designability import load_plugin
    from deft.protein.motif_problems import load_problems
    from deft.protein.scoring import per_sample_metrics, result_rows, write_per_sample
    from tunebench.dataset_registry import DatasetError
    from tunebench.io import read_json

    scorer = None
    if args.designability:
        if not args.designability_weights:
            raise ConfigError("--designability needs --designability-weights DIR (the local model weights)")
        scorer = load_plugin(args.designability, args.designability_weights)
    problems = load_problems(args.problems)
    run = from_dict(read_json(args.samples / "config.json"), ProteinConfig)
    with np.load(args.samples / "samples.npz", allow_pickle=False) as data:
        coords, seeds = data["coords"], data["seeds"]
    if coords.shape[:1] != (len(problems),) or coords.shape[2] != problems[0].length:
        raise DatasetError(f"{args.samples}/samples.npz holds {coords.shape} scaffolds, which do not match the "
                           f"{len(problems)} problems of length {problems[0].length} in {args.problems}")
    stats = read_json(args.samples / "stats.json")
    train_summary = read_json(args.train_summary) if args.train_summary else None
    metrics = per_sample_metrics(coords, problems, run)
    append_rows(args.results, result_rows(args.method, problems, coords, metrics, stats, run, train_summary, scorer))
    if args.per_sample:
        write_per_sample(args.per_sample, args.method, problems, metrics, seeds)
    solved = sum(any(m["success"] for m in problem_metrics) for problem_metrics in metrics)
    print(f"{args.method}: solved {solved}/{len(problems)} problems -> {args.results}")


if __name__ == "__main__":
    run_cli(main)
