"""Summarise a DAG run's per-rule benchmark files into one CSV (one row per job) and print the totals per rule.

    python -m benchmarks.timing_summary runs/mini/benchmarks --out results/mini/timing.csv \
        [--run-started runs/mini/run-started.json --runs-out results/mini/run_times.csv]

The Snakefile runs it after every successful run (`onsuccess`), for the run's scale. With --run-started (the JSON
its `onstart` writes: start time and targets) it also appends the run's wall time, jobs, commit and machine to
--runs-out, one row per run: the measured time of `bash scripts/main.sh` and `bash scripts/main.sh all`.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from tunebench.cli import run_cli


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", type=Path, help="the run's benchmark folder, e.g. runs/mini/benchmarks")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write (replaced whole)")
    parser.add_argument("--run-started", type=Path, help="JSON of the run's start ('started', POSIX s; 'targets')")
    parser.add_argument("--runs-out", type=Path, help="CSV the run's row is appended to (with --run-started)")
    args = parser.parse_args(argv)
    if (args.run_started is None) != (args.runs_out is None):
        parser.error("--run-started and --runs-out go together")
    return args


def main(argv: list[str] | None = None) -> None:
    """Write the per-job CSV atomically and print the per-rule totals."""
    args = parse_args(argv)
    import time

    from benchmarks.timing import COLUMNS, RUN_COLUMNS, rule_totals, run_record, timing_rows
    from tunebench.io import read_json, write_csv

    rows = timing_rows(args.benchmarks)
    write_csv(args.out, COLUMNS, rows)
    if args.run_started:
        start = read_json(args.run_started)
        record = run_record(rows, start["targets"], start["started"], time.time())
        previous = []
        if args.runs_out.is_file():
            with args.runs_out.open(newline="") as handle:
                previous = list(csv.DictReader(handle))
        write_csv(args.runs_out, RUN_COLUMNS, [*previous, record])
        print(f"run of {record['targets']}: {record['wall_s']:.1f} s wall, {record['jobs_run']} jobs → {args.runs_out}")
    for total in rule_totals(rows):
        print(f"{total['rule']:<28} {total['jobs']:>4} jobs {total['wall_s']:>9.1f} s wall "
              f"(longest {total['max_wall_s']:.1f} s) {total['cpu_s']:>9.1f} s CPU")
    print(f"{len(rows)} jobs, {sum(row['wall_s'] or 0 for row in rows):.1f} s wall in all → {args.out}")


if __name__ == "__main__":
    run_cli(main)
