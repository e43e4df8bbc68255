"""Summarise the training-seed replicates of the Diff-Tuning comparison: per dataset each method's FID over seeds,
the paired relative change against the baseline with a 95% t-interval over seeds, and their average over datasets.

    python -m difftune.seeds --out results/mini/difftune_seeds.csv --metric fid_local --baseline full_ft \\
        runs/mini/metrics/difftune_main/mnist5k/full_ft.csv \\
        runs/mini/metrics/difftune_seeds/mnist5k/full_ft@seed=1.csv …

The inputs are FID results CSVs whose methods are run names `method` (training seed 0, the main comparison's run) or
`method@seed=S` (difftune.variants); the output (experiment difftune_seeds) is rewritten whole. The
fine-tuning-length study (`--experiment difftune_regime`) passes names with `@steps=N` too: each length is summarised
on its own. What each row holds: difftune/seed_replicates.py and docs/difftune.md "Training-seed replicates".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import run_cli


def main(argv: list[str] | None = None) -> None:
    """Parse flags, summarise the replicates' rows and write the study's CSV."""
    parser = argparse.ArgumentParser(prog="python -m difftune.seeds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="the study's results CSV (replaced, atomically)")
    parser.add_argument("--metric", default="fid_local", help="the FID-like metric to summarise (default fid_local)")
    parser.add_argument("--baseline", default="full_ft", help="method of the relative change (default full_ft)")
    parser.add_argument("--experiment", default="difftune_seeds",
                        help="the experiment name of the rows (default difftune_seeds)")
    parser.add_argument("csv", nargs="+", type=Path, help="FID results CSVs of every (dataset, method, seed) run")
    args = parser.parse_args(argv)
    # Here: --help needs neither pandas nor scipy.
    from benchmarks.results import read_results, write_rows
    from difftune.seed_replicates import summary_rows

    rows = summary_rows(read_results(*args.csv), args.metric, args.baseline, args.experiment)
    write_rows(args.out, rows)
    print(f"{args.out}: {len(rows)} rows")


if __name__ == "__main__":
    run_cli(main)
