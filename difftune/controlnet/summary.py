"""Sudden-convergence steps and relative acceleration of ControlNet runs, from their fidelity curves.

    python -m difftune.controlnet.summary --baseline pretrained --curves results/mini/controlnet_fidelity.csv \\
        --results results/mini/controlnet.csv runs/mini/controlnet/mnist5k/*/*

Each RUN is a `difftune.controlnet.train` folder named .../{condition}/{base}; `base` is the label of the frozen model
(e.g. pretrained, diff_tuning). Writes the curves of every run as one long CSV (condition, base, step, mean, std, n,
chance, threshold) and tidy results rows (experiment controlnet, method = base, dataset = the training dataset) with
the metrics `convergence_step:{condition}` (empty with a note when the curve never stays above its threshold),
`final_fidelity:{condition}`, `threshold:{condition}` and, for every other base, `acceleration:{condition}`: the
baseline's convergence step divided by its own (>1 = converges sooner).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from tunebench.cli import run_cli
from tunebench.config import ConfigError, config_hash, from_dict

CURVE_COLUMNS = ("condition", "base", "step", "mean", "std", "n", "chance", "threshold")


def read_run(folder: Path) -> dict:
    """One run: its condition and base (from the folder names), summary and curve rows (steps increasing)."""
    # Here, not at the top: --help needs no torch or scikit-image.
    from difftune.controlnet.config import ControlTrainConfig
    from tunebench.io import read_json

    for name in ("summary.json", "fidelity.csv", "config.json"):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder}/{name} is missing; is {folder} a finished difftune.controlnet.train run?")
    summary = read_json(folder / "summary.json")
    with open(folder / "fidelity.csv", newline="") as handle:
        types = {"step": int, "n": int, "condition": str}
        curve = [{key: types.get(key, float)(value) for key, value in row.items()} for row in csv.DictReader(handle)]
    if folder.parent.name != summary["condition"]:
        raise ConfigError(f"{folder} is under {folder.parent.name}/ but trained the {summary['condition']} "
                          "condition; runs must be laid out as .../{condition}/{base}")
    return {"condition": summary["condition"], "base": folder.name, "summary": summary,
            "config": from_dict(read_json(folder / "config.json"), ControlTrainConfig),
            "curve": sorted(curve, key=lambda row: row["step"])}


def summary_rows(runs: list[dict], baseline: str) -> list[dict]:
    """The tidy results rows (see the module help)."""
    from difftune.controlnet.conditions import convergence_step, relative_acceleration  # here: scikit-image

    steps, rows = {}, []
    for run in runs:
        curve, summary, config = run["curve"], run["summary"], run["config"]
        threshold = curve[-1]["threshold"]
        step = convergence_step([int(r["step"]) for r in curve], [r["mean"] for r in curve], threshold)
        steps[run["condition"], run["base"]] = step
        shared = {"experiment": "controlnet", "method": run["base"], "dataset": summary["dataset"],
                  "seed": config.train.seed, "scale": config.scale, "model": summary["base"],
                  "steps": config.control.eval_sample_steps, "sampler": config.sample.sampler, "guidance": 1.0,
                  "n_samples": int(curve[-1]["n"]), "extractor": "", "reference": "",
                  "git_commit": summary["git_commit"], "config_hash": config_hash(config), "note": ""}
        condition = run["condition"]
        schedule = f"scored every {config.train.checkpoint_every} of {config.train.steps} training steps"
        never = "" if step is not None else f"never stays >= {threshold:.3g}; "
        rows += [{**shared, "metric": f"convergence_step:{condition}", "value": step if step is not None else "",
                  "note": never + schedule},
                 {**shared, "metric": f"final_fidelity:{condition}", "value": curve[-1]["mean"]},
                 {**shared, "metric": f"chance_fidelity:{condition}", "value": curve[-1]["chance"]},
                 {**shared, "metric": f"threshold:{condition}", "value": threshold}]
    for row in [r for r in rows if r["metric"].startswith("convergence_step:") and r["method"] != baseline]:
        condition = row["metric"].split(":", 1)[1]
        if (condition, baseline) not in steps:
            raise ConfigError(f"no {baseline!r} run for condition {condition!r}; pass --baseline or add the run")
        speedup = relative_acceleration(steps[condition, baseline], steps[condition, row["method"]])
        rows.append({**row, "metric": f"acceleration:{condition}", "value": speedup,
                     "note": f"{baseline} convergence step / {row['method']}'s" if speedup == speedup else
                     "a run never converges: no ratio"})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Parse flags, read the runs, write the curves and the rows."""
    parser = argparse.ArgumentParser(prog="python -m difftune.controlnet.summary", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="difftune.controlnet.train folders .../{condition}/{base}")
    parser.add_argument("--baseline", default="pretrained", help="base the accelerations are relative to")
    parser.add_argument("--curves", type=Path, required=True, help="long CSV of every run's fidelity curve")
    parser.add_argument("--results", type=Path, required=True, help="results CSV to add the rows to (made if new)")
    args = parser.parse_args(argv)
    from benchmarks.results import append_rows  # here: --help needs no pandas or torch
    from tunebench.io import write_csv

    runs = [read_run(folder) for folder in args.runs]
    write_csv(args.curves, CURVE_COLUMNS, [{**row, "base": run["base"]} for run in runs for row in run["curve"]])
    append_rows(args.results, summary_rows(runs, args.baseline))


if __name__ == "__main__":
    run_cli(main)
