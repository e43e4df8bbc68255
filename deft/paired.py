"""DEFT against each baseline image by image (experiment `deft_paired`): on every task, the mean over the test images
of DEFT's PSNR, SSIM and LPIPS minus the baseline's, with a paired percentile-bootstrap 95% interval
(benchmarks.paired: image indices redrawn jointly, 2000 resamples, seed 0).

    python -m deft.paired --per-image runs/mini/metrics/deft_main/*/*.per_image.csv --scale mini \\
        --out results/mini/deft_paired.csv

Rows: method = the baseline, dataset = the task, metrics `psnr_diff`, `ssim_diff`, `lpips_diff` = DEFT − baseline
(positive favours DEFT for PSNR and SSIM, negative for LPIPS), ci_low/ci_high the interval, n_samples the images
compared, reference = deft. The per-image CSVs are `deft.evaluate --per-image`'s; two runs of a task pair only when
they hold the same truth images at every index.

    python -m deft.paired --per-image runs/mini/metrics/deft_*/*/*.per_image.csv … --protocol-switches \
        --experiment deft_protocol --scale mini --out runs/mini/metrics/deft_protocol_paired.csv

`--protocol-switches` pairs each switched run of the `deft_protocol` target (method `METHOD@rowN:SWITCH`,
deft.protocol_runs) with the default run of METHOD on the same task instead: metrics `*_diff` = switched − default,
method the switched run's name, reference the default's method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import run_cli

EXPERIMENT = "deft_paired"


def main(argv: list[str] | None = None) -> None:
    """Pair DEFT's per-image scores with every baseline's on each task and append the rows to --out."""
    parser = argparse.ArgumentParser(prog="python -m deft.paired", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-image", nargs="+", required=True, type=Path, metavar="CSV",
                        help="per-image score CSVs of deft.evaluate, DEFT's and the baselines' (any tasks)")
    parser.add_argument("--out", required=True, type=Path, help="results CSV to add the rows to (made if new)")
    parser.add_argument("--scale", default="", help="provenance: the rows' scale column")
    parser.add_argument("--reference", default="deft", help="the method every other one is paired with")
    parser.add_argument("--protocol-switches", action="store_true",
                        help="pair each switched run (METHOD@rowN:SWITCH) with METHOD's default run: "
                             "switched − default")
    parser.add_argument("--experiment", default=EXPERIMENT, help=f"the rows' experiment column (default {EXPERIMENT})")
    args = parser.parse_args(argv)
    # pandas and numpy: only after parsing, so --help answers at once
    from benchmarks.lpips_args import LPIPS_EXTRACTOR
    from benchmarks.paired import paired_rows
    from benchmarks.per_image import read_runs
    from benchmarks.results import ResultsError, append_rows
    from tunebench.io import git_commit

    runs = read_runs(args.per_image)
    files = ", ".join(map(str, args.per_image))
    if args.protocol_switches:
        rows = switch_rows(runs)
        if not rows:
            raise ResultsError(f"no switched run (METHOD@rowN:SWITCH) in the per-image CSVs {files}")
    else:
        rows = [{**row, "reference": args.reference} for row in paired_rows(runs, args.reference)]
        if not rows:
            raise ResultsError(f"no method besides {args.reference} in the per-image CSVs {files}; pass the "
                               "baselines' too")
    shared = {"experiment": args.experiment, "seed": 0, "scale": args.scale, "model": "", "steps": None,
              "sampler": "", "guidance": None, "git_commit": git_commit(), "config_hash": ""}
    append_rows(args.out, [{**shared, "extractor": LPIPS_EXTRACTOR if row["metric"] == "lpips_diff" else "", **row}
                           for row in rows])
    for row in rows:
        print(f"{row['dataset']}\t{row['method']} vs {row['reference']}\t{row['metric']}\t{row.get('value')}\t"
              f"[{row.get('ci_low')}, {row.get('ci_high')}]")


def switch_rows(runs: dict) -> list[dict]:
    """Switched − default rows (benchmarks.paired.difference_rows) of every switched run among `runs`, keyed (task,
    method); a switched run whose default run is missing is an error naming both."""
    from benchmarks.paired import difference_rows
    from benchmarks.results import ResultsError
    from deft.protocol_runs import parse_run_name

    rows = []
    for (task, name), frame in sorted(runs.items()):
        parsed = parse_run_name(name)
        if parsed is None:
            continue
        if (task, parsed[0]) not in runs:
            raise ResultsError(f"no per-image scores of the default run of {parsed[0]} on {task}, to pair with {name}")
        rows += [{**row, "reference": parsed[0]} for row in difference_rows(frame, runs[(task, parsed[0])], name, task)]
    return rows


if __name__ == "__main__":
    run_cli(main)
