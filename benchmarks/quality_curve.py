"""A DiT's quality curve over training: one row of `dit_measure.MEASURES` per checkpoint, kept in a CSV that is
rewritten atomically after every step, so a killed job loses at most the step it was measuring and a new job skips
the steps already there. Also the summary JSON (the last row and the best fid_local) and the figure."""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks.dit_measure import MEASURES
from benchmarks.dit_sources import Weights
from tunebench.config import ConfigError
from tunebench.io import write_csv, write_json

log = logging.getLogger("benchmarks.dit_quality")  # the CLI's name, so that its log lines read as one tool's
NUMBER_COLUMNS = {"step": int, "n": int, "steps": int, "denoise_images": int, "guidance": float,
                  **dict.fromkeys(MEASURES, float)}


def curve_columns(protocol: dict) -> list[str]:
    """The CSV's columns: the step, the measures, the protocol's columns and the weights' SHA-256."""
    return ["step", *MEASURES, *protocol, "weights_sha256"]


def read_curve(path: Path, protocol: dict) -> dict[int, dict]:
    """The rows of an existing curve by step ({} when there is none); rows of another protocol are an error."""
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != curve_columns(protocol):
            raise ConfigError(f"{path} has the columns {reader.fieldnames}, not those of this tool's curve; delete it "
                              "or pass another --out-csv")
        rows = [{key: NUMBER_COLUMNS.get(key, str)(value) for key, value in row.items()} for row in reader]
    for row in rows:
        differing = [f"{key} {row[key]!r}, now {value!r}" for key, value in protocol.items() if row[key] != value]
        if differing:
            raise ConfigError(f"{path} holds step {row['step']} measured with another protocol "
                              f"({'; '.join(differing)}); pass another --out-csv, or delete it to measure again from "
                              "the checkpoints still there")
    return {row["step"]: row for row in rows}


def check_same_weights(rows: dict[int, dict], weights: list[Weights], path: Path) -> None:
    """Refuse a curve whose row of a step was measured on other weights than the run now holds at that step (the
    run was trained again): mixing the two runs would give a false curve."""
    for item in weights:
        row = rows.get(item.step)
        if row is not None and row["weights_sha256"] != item.sha256:
            raise ConfigError(f"{path} has step {item.step} measured on weights {row['weights_sha256'][:8]}…, but "
                              f"{item.folder} holds {item.sha256[:8]}… (the run was trained again); delete {path} "
                              "or pass another --out-csv")


def measure_curve(weights: list[Weights], measure: Callable[[Weights], dict], protocol: dict, out_csv: Path,
                  progress: bool = True) -> list[dict]:
    """Measure each of `weights` not yet in `out_csv` with `measure` (its MEASURES), adding its row and rewriting the
    CSV after each; return all rows by step, those of steps no longer held (deleted checkpoints) included."""
    rows = read_curve(out_csv, protocol)
    check_same_weights(rows, weights, out_csv)
    for item in tqdm(weights, desc="checkpoints", unit="checkpoint", disable=not progress):
        if item.step in rows:
            log.info("step %d: already in %s, skipped", item.step, out_csv)
            continue
        started = time.perf_counter()
        rows[item.step] = {"step": item.step, **measure(item), **protocol, "weights_sha256": item.sha256}
        write_csv(out_csv, curve_columns(protocol), [rows[step] for step in sorted(rows)])
        log.info("step %d: fid_local %.4f, eps_mse %.5f (%.1f s)", item.step, rows[item.step]["fid_local"],
                 rows[item.step]["eps_mse"], time.perf_counter() - started)
    return [rows[step] for step in sorted(rows)]


def summary(rows: list[dict]) -> dict:
    """The last row (highest step) with the best step by fid_local (the earliest of equal ones)."""
    best = min(rows, key=lambda row: (row["fid_local"], row["step"]))
    return {**rows[-1], "best_step": best["step"], "best_fid_local": best["fid_local"]}


def write_summary(rows: list[dict], out_json: Path, figure: Path | None) -> None:
    """Write the summary JSON and, when asked, the figure of fid_local and eps_mse against step."""
    write_json(out_json, summary(rows))
    if figure is not None:
        # Imported here: matplotlib and pandas are needed only for the figure.
        import pandas as pd

        from benchmarks.figures import plot_columns_vs_step
        plot_columns_vs_step(pd.DataFrame(rows), ("fid_local", "eps_mse"), figure,
                             f"{rows[-1]['dataset']} {rows[-1]['split']}, {rows[-1]['n']} samples, "
                             f"{rows[-1]['steps']} DDIM steps, guidance {rows[-1]['guidance']}")
