"""Sudden-convergence steps of ControlNet runs and the acceleration of each objective over the baseline, over seeds.

    python -m difftune.controlnet.summary --baseline standard --curves results/mini/controlnet_fidelity.csv \\
        --results results/mini/controlnet.csv runs/mini/controlnet/mnist5k/*/*/seed*

Each RUN is a `difftune.controlnet.train` folder; its condition, objective and seed are read from its summary.json,
and every run must have trained on one frozen base and dataset (the arms differ only in the objective). Writes the
curves of every run as one long CSV (condition, objective, seed, step, mean, std, n, chance, threshold, and the
run's protocol: scale, model, steps, sampler, guidance, git_commit) and tidy results rows (experiment controlnet,
method = the objective, dataset = the training dataset):

* per run (seed = its training seed): `convergence_step:{condition}` (empty with a note when the curve never stays
  above its threshold), `final_fidelity:{condition}`, `chance_fidelity:{condition}`, `threshold:{condition}`;
* per condition and every other objective (seed = the first training seed): `acceleration:{condition}`, the
  baseline's convergence step over the objective's as the ratio of their geometric means over seeds, with the 95%
  Welch t-interval of that ratio in ci_low, ci_high (none from one seed); >1 = converges sooner;
* `acceleration:all`: the same over every condition (exp of the mean of the per-condition log ratios), when each
  condition has one.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

from difftune.controlnet.config import ALL_CONDITIONS, ControlTrainConfig
from tunebench.cli import run_cli
from tunebench.config import ConfigError, config_hash, from_dict
from tunebench.io import read_json

PROTOCOL_COLUMNS = ("scale", "model", "steps", "sampler", "guidance", "git_commit")
CURVE_COLUMNS = ("condition", "objective", "seed", "step", "mean", "std", "n", "chance", "threshold",
                 *PROTOCOL_COLUMNS)


def read_run(folder: Path) -> dict:
    """One run: its condition, objective and seed (from summary.json), summary, config and curve (steps increasing)."""
    for name in ("summary.json", "fidelity.csv", "config.json"):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder}/{name} is missing; is {folder} a finished difftune.controlnet.train run?")
    summary = read_json(folder / "summary.json")
    if "objective" not in summary:
        raise ConfigError(f"{folder}/summary.json names no objective: the run predates the objectives (each arm on "
                          "its own base); train it again")
    with open(folder / "fidelity.csv", newline="") as handle:
        types = {"step": int, "n": int, "condition": str}
        curve = [{key: types.get(key, float)(value) for key, value in row.items()} for row in csv.DictReader(handle)]
    return {"condition": summary["condition"], "objective": summary["objective"], "seed": summary["seed"],
            "summary": summary, "config": from_dict(read_json(folder / "config.json"), ControlTrainConfig),
            "curve": sorted(curve, key=lambda row: row["step"]), "folder": folder}


def check_runs(runs: list[dict]) -> None:
    """One run per (condition, objective, seed), all on one frozen base and one dataset."""
    seen: dict[tuple, Path] = {}
    for run in runs:
        key = (run["condition"], run["objective"], run["seed"])
        if key in seen:
            raise ConfigError(f"{seen[key]} and {run['folder']} are both condition {key[0]}, objective {key[1]}, "
                              f"seed {key[2]}; pass each run once")
        seen[key] = run["folder"]
    for field in ("base", "dataset"):
        values = sorted({run["summary"][field] for run in runs})
        if len(values) > 1:
            raise ConfigError(f"the runs trained on different {field}s {values}; the objectives can only be "
                              f"compared on one frozen base and dataset")


def run_protocol(run: dict) -> dict:
    """How a run's fidelity was scored: scale, frozen base, sampling steps, sampler, guidance (the probe samples
    without classifier-free guidance) and the commit that trained it."""
    config = run["config"]
    return {"scale": config.scale, "model": run["summary"]["base"], "steps": config.control.eval_sample_steps,
            "sampler": config.sample.sampler, "guidance": 1.0, "git_commit": run["summary"]["git_commit"]}


def run_rows(run: dict) -> tuple[int | None, list[dict]]:
    """A run's convergence step and its four rows."""
    from difftune.controlnet.conditions import convergence_step  # here: scikit-image

    curve, summary, config = run["curve"], run["summary"], run["config"]
    threshold = curve[-1]["threshold"]
    step = convergence_step([int(r["step"]) for r in curve], [r["mean"] for r in curve], threshold)
    shared = {"experiment": "controlnet", "method": run["objective"], "dataset": summary["dataset"],
              "seed": run["seed"], **run_protocol(run), "n_samples": int(curve[-1]["n"]), "extractor": "",
              "reference": "", "config_hash": config_hash(config), "note": ""}
    condition = run["condition"]
    schedule = f"scored every {config.train.checkpoint_every} of {config.train.steps} training steps"
    # A run that never converges says so alone: a table cell's footnote joins its rows' distinct notes.
    never = f"never stays >= {threshold:.3g} up to step {config.train.steps}"
    return step, [
        {**shared, "metric": f"convergence_step:{condition}", "value": step if step is not None else "",
         "note": schedule if step is not None else never},
        {**shared, "metric": f"final_fidelity:{condition}", "value": curve[-1]["mean"]},
        {**shared, "metric": f"chance_fidelity:{condition}", "value": curve[-1]["chance"]},
        {**shared, "metric": f"threshold:{condition}", "value": threshold}]


def acceleration_row(template: dict, condition: str, groups: list[tuple[list, list]], baseline: str) -> dict:
    """The acceleration row of one objective (`template`: one of its rows) over the baseline, from (baseline steps,
    objective steps) groups, one per condition; no value when a run never converges (or converges at step 0)."""
    from benchmarks.intervals import geometric_mean_ratio  # here: scipy

    objective = template["method"]
    counts = sorted({len(steps) for group in groups for steps in group})
    row = {**template, "metric": f"acceleration:{condition}", "value": "", "ci_low": "", "ci_high": ""}
    missing = sum(step is None or step <= 0 for group in groups for steps in group for step in steps)
    if missing:
        return {**row, "note": f"{missing} run(s) never converge (or converge at step 0): no ratio"}
    ratio, low, high = geometric_mean_ratio(groups)
    over = "every condition: exp(mean per-condition log ratio); " if condition == ALL_CONDITIONS else ""
    how = ("95% Welch t-interval of the log ratio" if not math.isnan(low) else "one seed: no interval")
    note = (f"{over}{baseline} convergence step / {objective}'s, ratio of geometric means over "
            f"{'/'.join(map(str, counts))} seeds per arm; {how}")
    return {**row, "value": ratio, "ci_low": low, "ci_high": high, "note": note}


def summary_rows(runs: list[dict], baseline: str) -> list[dict]:
    """The tidy results rows (see the module help)."""
    check_runs(runs)
    steps: dict[tuple[str, str], list] = {}  # (condition, objective) → convergence steps by seed
    templates: dict[str, dict] = {}  # objective → its first seed's row, for the acceleration rows' protocol columns
    rows = []
    for run in sorted(runs, key=lambda r: (r["condition"], r["objective"], r["seed"])):
        step, own = run_rows(run)
        steps.setdefault((run["condition"], run["objective"]), []).append(step)
        templates.setdefault(run["objective"], {**own[0], "note": ""})
        rows += own
    conditions = sorted({condition for condition, _ in steps})
    for objective in sorted({objective for _, objective in steps} - {baseline}):
        groups = []
        for condition in conditions:
            if (condition, baseline) not in steps or (condition, objective) not in steps:
                raise ConfigError(f"condition {condition!r} lacks a {baseline!r} or {objective!r} run; pass "
                                  "--baseline or add the runs")
            groups.append((steps[condition, baseline], steps[condition, objective]))
            rows.append(acceleration_row(templates[objective], condition, groups[-1:], baseline))
        if len(conditions) > 1:
            rows.append(acceleration_row(templates[objective], ALL_CONDITIONS, groups, baseline))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Parse flags, read the runs, write the curves and the rows."""
    parser = argparse.ArgumentParser(prog="python -m difftune.controlnet.summary", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="difftune.controlnet.train folders")
    parser.add_argument("--baseline", default="standard", help="objective the accelerations are relative to")
    parser.add_argument("--curves", type=Path, required=True, help="long CSV of every run's fidelity curve")
    parser.add_argument("--results", type=Path, required=True, help="results CSV to add the rows to (made if new)")
    args = parser.parse_args(argv)
    from benchmarks.results import append_rows  # here: --help needs no pandas or torch
    from tunebench.io import write_csv

    runs = [read_run(folder) for folder in args.runs]
    write_csv(args.curves, CURVE_COLUMNS, [{**row, "objective": run["objective"], "seed": run["seed"],
                                            **run_protocol(run)} for run in runs for row in run["curve"]])
    append_rows(args.results, summary_rows(runs, args.baseline))


if __name__ == "__main__":
    run_cli(main)
