"""Do two protein sample folders of the same seeds agree? For a speed switch (e.g. `sample.compile`), which should
change kernel rounding only: per-sample deviation of the coordinates, each arm's quality figures and sampling time.

    python -m deft.protein.sample_agreement --arm eager=DIR --arm compiled=DIR --out CSV [--table MD]

Each DIR is an output folder of `python -m deft.protein.sample` (samples.npz, stats.json, config.json); the first arm
is the reference. The seeds must match. Deviations are in Å, without superposition (the samplers work in one frame).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import run_cli
from tunebench.config import ConfigError

COLUMNS = ("arm", "method", "samples", "warm_up_seconds", "seconds_per_sample", "max_abs_dev_A", "rms_dev_median_A",
           "rms_dev_max_A", "valid_bonds", "clash_free", "clash_free_low", "clash_free_high", "rg_mean", "helix",
           "scale", "problems", "samples_per_problem", "sampler", "sample_steps", "eta", "noise_scale", "dps_scale",
           "compile", "git_commit")


def agreement_rows(arms: dict[str, Path]) -> list[dict]:
    """One row per arm: its time per sample, its quality figures, its deviation from the first arm, its sampling
    protocol and the commit its samples were made at."""
    import numpy as np

    from deft.protein.config import ProteinConfig
    from deft.protein.quality import quality_summary
    from tunebench.config import from_dict
    from tunebench.io import read_json

    loaded = {}
    for label, folder in arms.items():
        with np.load(folder / "samples.npz") as data:
            loaded[label] = (data["coords"].astype(np.float64), data["seeds"])
    reference_coords, reference_seeds = next(iter(loaded.values()))
    rows = []
    for label, (coords, seeds) in loaded.items():
        if not np.array_equal(seeds, reference_seeds):
            raise ConfigError(f"{arms[label]}: its seeds differ from the first arm's; sample both with the same "
                              "problems and problems.samples")
        stats = read_json(arms[label] / "stats.json")
        run = from_dict(read_json(arms[label] / "config.json"), ProteinConfig)
        traces = coords.reshape(-1, *coords.shape[-2:])
        quality = quality_summary(traces, run.success)
        deviation = np.sqrt(((coords - reference_coords) ** 2).sum(-1).mean(-1))  # per sample, Å
        rows.append({"arm": label, "method": stats["method"], "samples": len(traces),
                     "warm_up_seconds": float(stats.get("warm_up_seconds", 0.0)),
                     "seconds_per_sample": stats["seconds_per_sample"],
                     "max_abs_dev_A": float(np.abs(coords - reference_coords).max()),
                     "rms_dev_median_A": float(np.median(deviation)), "rms_dev_max_A": float(deviation.max()),
                     **{key: quality[key] for key in COLUMNS if key in quality},
                     "scale": run.scale, "problems": stats["problems"],
                     "samples_per_problem": stats["samples_per_problem"], "sampler": f"ddim-{run.sample.spacing}",
                     "sample_steps": run.sample.steps, "eta": run.sample.eta, "noise_scale": run.sample.noise_scale,
                     "dps_scale": stats.get("dps_scale", ""), "compile": run.sample.compile,
                     "git_commit": stats.get("git_commit", "")})
    return rows


def markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table, the first arm named as the reference."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for row in rows:
        lines.append("| " + " | ".join(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c])
                                       for c in COLUMNS) + " |")
    return "\n".join(lines) + (f"\n\n*Deviations: per-sample coordinate RMS (Å, no superposition) from arm "
                               f"`{rows[0]['arm']}`; warm-up: the compilation, before the clock of the seconds per "
                               "sample starts; clash-free interval: Wilson score over the samples; seeds p·10⁶ + k, "
                               "k < samples_per_problem, for problem p.*\n")


def parse_arm(text: str) -> tuple[str, Path]:
    """'LABEL=DIR' → (label, folder)."""
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"--arm {text!r}: write LABEL=DIR")
    return label, Path(folder)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, compare, write the CSV (and the table)."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.sample_agreement", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", type=parse_arm, action="append", required=True,
                        help="LABEL=DIR, a deft.protein.sample output folder; the first is the reference (2 or more)")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write")
    parser.add_argument("--table", type=Path, help="also write the Markdown table here")
    args = parser.parse_args(argv)
    arms = dict(args.arm)
    if len(arms) < 2:
        parser.error("give at least two --arm LABEL=DIR with distinct labels")
    for folder in arms.values():
        if not (folder / "samples.npz").is_file():
            raise ConfigError(f"{folder}: no samples.npz; make it with python -m deft.protein.sample ... --out "
                              f"{folder}")
    from tunebench.io import atomic_path, significant, write_csv

    rows = agreement_rows(arms)
    print(write_csv(args.out, COLUMNS, significant(rows)), end="")
    if args.table:
        with atomic_path(args.table) as tmp:
            tmp.write_text(markdown(rows))


if __name__ == "__main__":
    run_cli(main)
