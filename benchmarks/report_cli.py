"""The command line every report CLI shares (`python -m <package>.report table|figure …`): `table` renders results
CSVs in one of the package's layouts, `figure NAME` draws one PNG from a long-format CSV. Each package's `report`
module names its layouts and figures; the flags, reading and writing are the same everywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmarks.results import ResultsError, read_results
from benchmarks.tables import Layout, write_tables

TABLE_HELP = ("One table per experiment (or only --experiment NAME), written as {experiment}.md and {experiment}.tex. "
              "Cells are the mean over seeds, with ± the sample standard deviation when there is more than one seed; "
              "the best value is bold. Skipped metrics show \"—\" and a footnote with the row's note; the caption "
              "states the protocol read from the rows.")


def report_parser(prog: str, description: str) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The parser of a report CLI and its sub-commands (`table`, `figure`), to which the package adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, parser.add_subparsers(dest="command", required=True)


def add_table_command(commands: argparse._SubParsersAction, layouts: dict[str, str]) -> argparse.ArgumentParser:
    """Add `table` with the flags of every layout; `layouts` maps each layout's name to what it shows. Returns the
    sub-parser, for the flags of the package's own layouts."""
    table = commands.add_parser("table", help="render results CSVs as Markdown and LaTeX tables",
                                description=TABLE_HELP)
    table.add_argument("--results", nargs="+", required=True, type=Path, metavar="CSV", help="results CSVs")
    table.add_argument("--layout", choices=list(layouts), required=True,
                       help="; ".join(f"{name}: {shows}" for name, shows in layouts.items()))
    table.add_argument("--out-dir", type=Path, required=True, help="folder for {experiment}.md and {experiment}.tex")
    table.add_argument("--experiment", default=None, help="render only this experiment (default: every one)")
    table.add_argument("--methods", default=None, help="comma-separated row order and selection (default: the "
                                                       "baseline first, then alphabetical)")
    return table


def run_table_command(args: argparse.Namespace, layout: Layout, **options) -> None:
    """Read --results, write every experiment's table in `layout` (with --methods and `options`), print each path."""
    results = read_results(*args.results)
    if results.empty:  # else the CLI would write nothing and still exit 0; checked here, where the files are known
        raise ResultsError(f"{', '.join(map(str, args.results))} hold no result rows (only a header); run the "
                           "metric jobs that append to them first")
    methods = args.methods.split(",") if args.methods else None
    for path in write_tables(results, layout, args.out_dir, args.experiment, methods=methods, **options):
        print(path)


def add_figure_command(commands: argparse._SubParsersAction,
                       figures: dict[str, str]) -> argparse._SubParsersAction:
    """Add `figure NAME` for each of `figures` (name → what it plots), each reading a long-format CSV. Returns the
    figures' sub-commands, for figures that read something else."""
    figure = commands.add_parser("figure", help="draw one PNG figure", description="draw one PNG figure")
    names = figure.add_subparsers(dest="figure", required=True)
    for name, plots in figures.items():
        sub = names.add_parser(name, help=plots, description=plots)
        sub.add_argument("--csv", type=Path, required=True, help="long-format CSV (columns: see the module help)")
        sub.add_argument("--metric", default=None, help="plot only this metric")
        sub.add_argument("--dataset", default=None, help="plot only this dataset")
        sub.add_argument("--out", type=Path, required=True, help="PNG to write")
    return names


def run_figure_command(args: argparse.Namespace, plot: Callable[[pd.DataFrame, Path], None]) -> None:
    """Read --csv (only --metric and --dataset when given), draw it with `plot` to --out and print the path."""
    from benchmarks.figures import read_curve_csv  # matplotlib is slow to import; only figures need it

    plot(read_curve_csv(args.csv, args.metric, args.dataset), args.out)
    print(args.out)
