"""Score one method's scaffolds on every motif problem and append tidy result rows.

    python -m deft.protein.evaluate --problems runs/mini/protein/problems --samples runs/mini/protein/samples/deft-4 \\
        --method deft-4 --train-summary runs/mini/protein/deft-4/summary.json --results runs/mini/metrics/protein/deft-4.csv

Per problem (the `dataset` column): success rate and solved (≥ 1 success, the paper's convention), the share with
the motif placed (motif RMSD under the threshold, geometry aside), median motif RMSD, valid-bond and clash-free fractions, P-SEA helix/strand/coil fractions, radius of gyration (and the native
window's), pairwise TM-score diversity of the first `TM_SAMPLES` samples, and the method's cost. Success is the
folding-free stand-in of `success` (motif RMSD, Cα–Cα bonds, clashes). The paper's scRMSD (ProteinMPNN + ESMFold)
is added by a --designability plug-in with local weights (deft.protein.designability); without one its rows are
written empty with the reason. Also writes --per-sample CSV when given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.results import append_rows
from deft.protein.config import ProteinConfig, SuccessCriteria
from deft.protein.designability import SC_RMSD_THRESHOLD, SKIP_NOTE, load_plugin
from deft.protein.geometry import pairwise_tm_diversity, radius_of_gyration
from deft.protein.motif_problems import Problem, load_problems, per_sample_metrics
from tunebench.cli import run_cli
from tunebench.config import ConfigError, config_hash, from_dict
from tunebench.datasets import DatasetError
from tunebench.io import read_json, write_csv

EXPERIMENT = "protein_motif"
TM_SAMPLES = 20  # TM-align on all pairs of 100 samples would cost more than sampling them


def problem_summary(problem: Problem, samples: np.ndarray, metrics: list[dict],
                    criteria: SuccessCriteria) -> dict[str, float]:
    """The metric values of one problem (one result row each); `motif_placed_rate` is the motif half of the success
    criterion alone (motif RMSD under its threshold, whatever the chain geometry)."""
    column = {key: np.array([m[key] for m in metrics], dtype=float) for key in metrics[0]}
    successes = column["success"]
    return {"success_rate": float(successes.mean()), "solved": float(successes.any()),
            "motif_placed_rate": float((column["motif_rmsd"] < criteria.motif_rmsd).mean()),
            "motif_rmsd_median": float(np.median(column["motif_rmsd"])),
            "bond_valid": float(column["bond_valid_fraction"].mean()),
            "clash_free": float((column["clashes"] == 0).mean()),
            "helix": float(column["helix_fraction"].mean()), "strand": float(column["strand_fraction"].mean()),
            "coil": float(column["coil_fraction"].mean()), "radius_of_gyration": float(column["radius_of_gyration"].mean()),
            "radius_of_gyration_native": radius_of_gyration(problem.window),
            "tm_diversity": pairwise_tm_diversity(list(samples[:TM_SAMPLES]))}


def designability_values(coords: np.ndarray, metrics: list[list[dict]], scorer) -> list[dict[str, float]]:
    """Per problem: median scRMSD and the paper's full success (motif success and scRMSD < 2 Å), or NaN without a
    plug-in (the rows then carry the skip note)."""
    if scorer is None:
        return [{"sc_rmsd_median": float("nan"), "designable_success_rate": float("nan")} for _ in coords]
    out = []
    for samples, problem_metrics in zip(coords, metrics):
        sc = np.asarray(scorer(list(samples)), dtype=float)
        motif_ok = np.array([m["success"] for m in problem_metrics])
        out.append({"sc_rmsd_median": float(np.median(sc)),
                    "designable_success_rate": float((motif_ok & (sc < SC_RMSD_THRESHOLD)).mean())})
    return out


def result_rows(method: str, problems: list[Problem], coords: np.ndarray, metrics: list[list[dict]], stats: dict,
                run: ProteinConfig, train_summary: dict | None, scorer=None) -> list[dict]:
    """Tidy rows (benchmarks.results schema) for every problem and metric, with the protocol in the columns."""
    prior_note = f"prior {stats['prior']}"
    cost = {"seconds_per_sample": stats["seconds_per_sample"], "prior_nfe": stats["prior_nfe_per_sample"],
            "conditional_nfe": stats["conditional_nfe_per_sample"], "prior_vjps": stats["prior_vjps_per_sample"]}
    if train_summary:
        cost["train_seconds"] = train_summary.get("wall_seconds_this_invocation", float("nan"))
        cost["parameters"] = train_summary.get("parameters", float("nan"))
        if "head_fraction" in train_summary:
            cost["head_fraction"] = train_summary["head_fraction"]
    sampler = f"ddim eta={run.sample.eta:g} noise_scale={run.sample.noise_scale:g}"
    rows = []
    designable = designability_values(coords, metrics, scorer)
    for problem, samples, problem_metrics, design in zip(problems, coords, metrics, designable):
        values = {**problem_summary(problem, samples, problem_metrics, run.success), **design, **cost}
        for metric, value in values.items():
            rows.append({"experiment": EXPERIMENT, "method": method, "dataset": problem.name, "metric": metric,
                         "value": value, "seed": 0, "scale": run.scale, "model": prior_note,
                         "steps": run.sample.steps, "sampler": sampler, "guidance": stats.get("dps_scale"),
                         "n_samples": len(samples), "extractor": criteria_text(run),
                         "reference": f"{problem.chain}[{problem.start}:{problem.start + problem.length}] "
                                      f"motif {','.join(f'{a}-{b - 1}' for a, b in problem.segments)}",
                         "git_commit": stats.get("git_commit", ""), "config_hash": config_hash(run),
                         "note": SKIP_NOTE if metric in design and scorer is None else ""})
    return rows


def criteria_text(run: ProteinConfig) -> str:
    """The folding-free success criterion, for the protocol column."""
    c = run.success
    return (f"folding-free: motif RMSD < {c.motif_rmsd:g} Å, ≥ {100 * c.min_valid_bonds:g}% Cα–Cα bonds in "
            f"{c.bond_length:g} ± {c.bond_tolerance:g} Å, no Cα pair (|i−j| ≥ 3) < {c.clash_distance:g} Å")


def write_per_sample(path: Path, method: str, problems: list[Problem], metrics: list[list[dict]], seeds) -> None:
    """One CSV row per sample with every metric (for plots and re-analysis)."""
    write_csv(path, ["method", "problem", "seed", *metrics[0][0]],
              [{"method": method, "problem": problem.name, "seed": int(seed), **m}
               for problem, problem_metrics, problem_seeds in zip(problems, metrics, seeds)
               for m, seed in zip(problem_metrics, problem_seeds)])


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
