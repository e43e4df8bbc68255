"""The two steps of `scripts/gpu-check.sh` that are not another CLI: make the pipeline's inputs, and write the report.

    python -m benchmarks.gpu_check inputs --scale paper --work WORK [--model DIR] [--device cuda]
    python -m benchmarks.gpu_check report --work WORK --out results/bench/throughput-h100.csv --started EPOCH_S

`inputs` writes WORK/images/artbench10/train/CLASS/*.png (seeded noise at data.resolution), WORK/dit and WORK/vae
(random weights, the scale's DiT and the VAE that maps data.resolution to model.sample_size; not with --model) and
WORK/inputs.json (counted FLOPs per image, the device's peak, versions). `report` turns what the script's steps
left in WORK into OUT (the throughput CSV's columns: the grid's rows, then one per pipeline step), OUT.md and
OUT_agreement.csv (`benchmarks.gpu_check_report` says how). Run the script rather than these.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.throughput_settings import WORKLOADS, parse_list, parse_switch
from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import PRECISIONS, ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The subcommands and their flags."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    inputs = commands.add_parser("inputs", help="write the synthetic images, a random DiT and VAE, inputs.json")
    add_config_args(inputs)
    inputs.add_argument("--work", required=True, type=Path, help="the script's work folder")
    inputs.add_argument("--images-per-class", type=int, default=8, help="synthetic images per class (10 classes)")
    inputs.add_argument("--model", default=None, help="a local DiT pipeline folder (with vae/): no random weights")
    inputs.add_argument("--device", default=None, help="the device the steps run on (its name and peak are recorded)")
    report = commands.add_parser("report", help="write OUT.csv, OUT.md and OUT_agreement.csv from the work folder")
    report.add_argument("--work", required=True, type=Path, help="the script's work folder")
    report.add_argument("--out", required=True, type=Path, help="the CSV to write (.md and _agreement.csv beside)")
    report.add_argument("--started", type=float, default=None, help="the script's start (Unix seconds)")
    report.add_argument("--budget-s", type=float, default=480.0, help="the script's time budget (seconds)")
    report.add_argument("--command-line", default="bash scripts/gpu-check.sh", help="the command, for the page")
    report.add_argument("--workloads", default="train,sample_ddim50_cfg", help="the grid's workloads (comma list)")
    report.add_argument("--batch-sizes", default="32,128", help="the grid's batch sizes (comma list)")
    report.add_argument("--precisions", default="tf32,bf16", help="the grid's number formats (comma list)")
    report.add_argument("--compile", default="off,on", help="the grid's compile settings: off, on or off,on")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run one subcommand."""
    args = parse_args(argv)
    setup_logging()
    if args.command == "report":
        from benchmarks.gpu_check_report import write_report  # no torch: the report reads files only

        spec = (parse_list(args.workloads, "--workloads", WORKLOADS),
                parse_list(args.batch_sizes, "--batch-sizes", kind=int),
                parse_list(args.precisions, "--precisions", PRECISIONS), parse_switch(args.compile, "--compile"))
        elapsed = time.time() - args.started if args.started is not None else 0.0
        missing = write_report(args.work, args.out, spec, elapsed, args.budget_s, args.command_line)
        print(f"wrote {args.out}, {args.out.with_suffix('.md')} and the agreement beside them"
              + (f"; {len(missing)} grid cells not measured" if missing else ""))
        return
    if args.images_per_class < 1:
        raise ConfigError(f"--images-per-class must be at least 1, got {args.images_per_class}")
    run = config_from_args(args)
    if args.dry_run:
        print_config(run)
        return
    # torch and diffusers load only here, so --help and the report answer at once
    from benchmarks.gpu_check_inputs import make_inputs
    from tunebench.speed import default_device

    make_inputs(run, args.work, args.images_per_class, args.device or default_device(), args.model)


if __name__ == "__main__":
    run_cli(main)
