"""Scores of one method's scaffolds: per-sample geometry, per-problem summaries, designability and the tidy result rows
that `python -m deft.protein.evaluate` appends (docs/protein.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.intervals import interval_note, wilson_interval
from deft.protein.config import ProteinConfig, SuccessCriteria
from deft.protein.designability import SC_RMSD_THRESHOLD, SKIP_NOTE
from deft.protein.geometry import pairwise_tm_diversity, radius_of_gyration, scaffold_metrics
from deft.protein.motif_problems import Problem
from tunebench.config import config_hash
from tunebench.io import write_csv
from tunebench.run_summary import training_wall_seconds

EXPERIMENT = "protein_motif"
TM_SAMPLES = 20  # TM-align on all pairs of 100 samples would cost more than sampling them
# Shares of a problem's samples, each sample yes or no: their rows carry a Wilson 95% interval.
RATES = ("success_rate", "motif_placed_rate", "clash_free", "designable_success_rate")


def per_sample_metrics(coords: np.ndarray, problems: list[Problem], run: ProteinConfig) -> list[list[dict]]:
    """scaffold_metrics for every sample of every problem."""
    return [[scaffold_metrics(sample, problem.window[problem.motif_indices()], problem.motif_indices(), run.success)
             for sample in samples] for problem, samples in zip(problems, coords)]


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
            "coil": float(column["coil_fraction"].mean()),
            "radius_of_gyration": float(column["radius_of_gyration"].mean()),
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
    """Tidy rows (benchmarks.results schema) for every problem and metric, with the protocol in the columns and the
    Wilson interval of each rate (`RATES`)."""
    prior_note = f"prior {stats['prior']}"
    cost = {"seconds_per_sample": stats["seconds_per_sample"], "prior_nfe": stats["prior_nfe_per_sample"],
            "conditional_nfe": stats["conditional_nfe_per_sample"], "prior_vjps": stats["prior_vjps_per_sample"]}
    if train_summary:
        seconds = training_wall_seconds(train_summary)
        cost["train_seconds"] = seconds if seconds is not None else float("nan")
        cost["parameters"] = train_summary.get("parameters", float("nan"))
        if "head_fraction" in train_summary:
            cost["head_fraction"] = train_summary["head_fraction"]
    sampler = f"ddim spacing={run.sample.spacing} eta={run.sample.eta:g} noise_scale={run.sample.noise_scale:g}"
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
            if metric in RATES and np.isfinite(value):
                rows[-1].update(rate_interval(value, len(samples)))
    return rows


def rate_interval(rate: float, n: int) -> dict:
    """ci_low, ci_high and note of a share of `n` samples: the Wilson score interval of its count (rate × n, exact
    for a mean of yes/no values)."""
    low, high = wilson_interval(round(rate * n), n)
    return {"ci_low": low, "ci_high": high,
            "note": interval_note(f"Wilson score interval over the {n} samples of the problem")}


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
