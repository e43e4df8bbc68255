"""Summarise a DAG run's per-rule benchmark files into one CSV (one row per job) and print the totals per rule.

    python -m benchmarks.timing_summary runs/mini/benchmarks --out results/mini/timing.csv

The Snakefile runs it after every successful run (`onsuccess`), for the run's scale.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import run_cli


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", type=Path, help="the run's benchmark folder, e.g. runs/mini/benchmarks")
    parser.add_argument("--out", type=Path, required=True, help="the CSV to write (replaced whole)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Write the per-job CSV atomically and print the per-rule totals."""
    args = parse_args(argv)
    from benchmarks.timing import COLUMNS, rule_totals, timing_rows
    from tunebench.io import write_csv

    rows = timing_rows(args.benchmarks)
    write_csv(args.out, COLUMNS, rows)
    for total in rule_totals(rows):
        print(f"{total['rule']:<28} {total['jobs']:>4} jobs {total['wall_s']:>9.1f} s wall "
              f"(longest {total['max_wall_s']:.1f} s) {total['cpu_s']:>9.1f} s CPU")
    print(f"{len(rows)} jobs, {sum(row['wall_s'] or 0 for row in rows):.1f} s wall in all → {args.out}")


if __name__ == "__main__":
    run_cli(main)
