"""The generic figures: a metric against training step, one line per method, and a grid of sample images.

    python -m benchmarks.report figure curve --csv results/mini/fid_vs_step.csv \\
        --out results/mini/figures/fid_vs_step.png [--metric fid_local] [--dataset mnist5k]
    python -m benchmarks.report figure grid --npz runs/mini/source/samples/samples.npz --out grid.png \\
        --nrow 8 --title Source

The curve CSV is a long table with the columns step, method, metric, value; several rows at one step (seeds) are
averaged, and a shaded band shows their min–max. The papers' figures and tables: `python -m difftune.report`,
`difftune.controlnet.report`, `deft.report` and `deft.protein.report`.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.figures import plot_metric_vs_step, plot_sample_grid
from benchmarks.report_cli import add_figure_command, report_parser, run_figure_command
from tunebench.cli import run_cli
from tunebench.io import load_npz_images


def main(argv: list[str] | None = None) -> None:
    """Parse the figure's sub-command and write it."""
    parser, commands = report_parser("python -m benchmarks.report", __doc__)
    figures = add_figure_command(commands, {"curve": "metric vs training step, one line per method"})
    grid = figures.add_parser("grid", help="tile sample images", description="tile sample images into one PNG")
    grid.add_argument("--npz", type=Path, required=True, help=".npz with uint8 N×H×W×C 'images' (tunebench.sample)")
    grid.add_argument("--out", type=Path, required=True, help="PNG to write")
    grid.add_argument("--nrow", type=int, default=8, help="images per row")
    grid.add_argument("--max-images", type=int, default=64, help="show at most this many (the first ones)")
    grid.add_argument("--title", default="", help="title above the grid")
    args = parser.parse_args(argv)
    if args.figure == "grid":
        plot_sample_grid(load_npz_images(args.npz)[:args.max_images], args.out, args.nrow, args.title)
        print(args.out)
    else:
        run_figure_command(args, plot_metric_vs_step)


if __name__ == "__main__":
    run_cli(main)
