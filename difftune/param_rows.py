"""Results rows of what a fine-tuning run trained: trainable parameter count and share (the PEFT table's column).

    python -m difftune.param_rows --run runs/mini/finetune/mnist5k/full_ft+lora \\
        --results runs/mini/metrics/difftune_peft/mnist5k/full_ft+lora.params.csv --experiment difftune_peft

Reads RUN/summary.json and RUN/config.json (written by `python -m difftune.finetune`); the rows' method and dataset
are the run's own, so a table cannot pair a count with the wrong run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from difftune.config import FineTuneConfig
from tunebench.cli import run_cli
from tunebench.config import ConfigError, config_hash, from_dict


def param_rows(run_dir: Path, experiment: str, method: str) -> list[dict]:
    """Two tidy rows: trainable_params (a count) and trainable_percent (of the merged model's parameters)."""
    from tunebench.io import read_json  # here: --help needs no torch

    for name in ("summary.json", "config.json"):
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir}/{name} is missing; is {run_dir} a finished difftune.finetune run?")
    summary, config = read_json(run_dir / "summary.json"), from_dict(read_json(run_dir / "config.json"), FineTuneConfig)
    shared = {"experiment": experiment, "method": method, "dataset": summary["dataset"], "seed": config.train.seed,
              "scale": config.scale, "model": summary["pretrained"], "steps": summary["steps"], "sampler": "",
              "guidance": "", "n_samples": "", "extractor": "", "reference": "", "git_commit": summary["git_commit"],
              "config_hash": config_hash(config), "note": f"peft={summary['peft']}; counts the label table"}
    trainable, total = summary["trainable_parameters"], summary["parameters"]
    return [{**shared, "metric": "trainable_params", "value": trainable},
            {**shared, "metric": "trainable_percent", "value": 100.0 * trainable / total}]


def main(argv: list[str] | None = None) -> None:
    """Parse flags and append the rows."""
    parser = argparse.ArgumentParser(prog="python -m difftune.param_rows", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a difftune.finetune output folder")
    parser.add_argument("--results", type=Path, required=True, help="results CSV to add the rows to (made if new)")
    parser.add_argument("--experiment", required=True, help="the rows' experiment column")
    parser.add_argument("--method", default=None, help="the rows' method column (default: the run folder's name)")
    args = parser.parse_args(argv)
    from benchmarks.results import append_rows  # here: --help needs no pandas
    append_rows(args.results, param_rows(args.run, args.experiment, args.method or args.run.name))


if __name__ == "__main__":
    run_cli(main)
