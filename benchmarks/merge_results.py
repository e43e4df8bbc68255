"""Merge per-job results CSVs into one (each checked; a key in two files is an error).

    python -m benchmarks.merge_results --out ALL.csv [--experiment NAME] A.csv B.csv ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import run_cli


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.merge_results --out ALL.csv A.csv B.csv ...`: merge per-job results files into one."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.merge_results", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="merged CSV (written atomically)")
    parser.add_argument("--experiment", default=None,
                        help="write this experiment name in every row (a table of rows measured for several)")
    parser.add_argument("csv", nargs="+", type=Path, help="results CSVs to merge")
    args = parser.parse_args(argv)
    from benchmarks.results import merge  # here: --help needs no pandas
    print(f"{args.out}: {merge(args.out, args.csv, args.experiment)} rows")


if __name__ == "__main__":
    run_cli(main)
