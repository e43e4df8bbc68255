"""The generic figures (a metric against training step, one line per method; a grid of sample images) and the
report page a reader opens (the claims ledger first, then the tables and figures behind each claim).

    python -m benchmarks.report figure curve --csv results/mini/fid_vs_step.csv \\
        --out results/mini/figures/fid_vs_step.png [--metric fid_local] [--dataset mnist5k]
    python -m benchmarks.report figure grid --npz runs/mini/source/samples/samples.npz --out grid.png \\
        --nrow 8 --title Source

    python -m benchmarks.report page --claims results/mini/claims/headline.csv --scale mini --tier headline \\
        --tables results/mini/tables/difftune_main.md ... \\
        --figures results/mini/figures/forgetting.png=workflows/report/forgetting.rst ... \\
        --out results/mini/report/headline.html

The curve CSV is a long table with the columns step, method, metric, value; several rows at one step (seeds) are
averaged, and a shaded band shows their min–max. The papers' figures and tables: `python -m difftune.report`,
`difftune.controlnet.report`, `deft.report` and `deft.protein.report`.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.report_cli import add_figure_command, report_parser, run_figure_command
from tunebench.cli import run_cli
from tunebench.io import atomic_path, load_npz_images


def write_page(args) -> None:
    """Read the ledger, tables and figures of --claims/--tables/--figures and write the report page to --out."""
    import pandas as pd

    from benchmarks.report_page import read_figure, report_html

    claims = pd.read_csv(args.claims)
    text = claims.select_dtypes(exclude="number").columns
    claims[text] = claims[text].fillna("")  # an empty detail or commit is text, not NaN
    figures = [read_figure(item) for item in args.figures]
    missing = [path for path in args.tables if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"{', '.join(map(str, missing))} do not exist")
    page = report_html(claims.to_dict("records"), args.tables, figures, args.out, args.scale, args.tier)
    with atomic_path(args.out) as tmp:
        tmp.write_text(page)
    print(args.out)


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
    page = commands.add_parser("page", help="the HTML report: claims ledger, tables, figures",
                               description="write the static HTML report (relative links, nothing from the network)")
    page.add_argument("--claims", type=Path, required=True, help="the ledger CSV (benchmarks.ledger)")
    page.add_argument("--tables", type=Path, nargs="*", default=[], metavar="MD", help="table files to include")
    page.add_argument("--figures", nargs="*", default=[], metavar="PNG[=CAPTION]",
                      help="PNGs to include; a caption sidecar NAME.json beside one, or a caption text file after =")
    page.add_argument("--scale", required=True, help="the scale, for the title")
    page.add_argument("--tier", required=True, help="the tier of the ledger, for the title")
    page.add_argument("--out", type=Path, required=True, help="HTML file to write")
    args = parser.parse_args(argv)
    from benchmarks.figures import plot_metric_vs_step, plot_sample_grid  # after parsing: matplotlib is slow to import

    if args.command == "page":
        write_page(args)
    elif args.figure == "grid":
        plot_sample_grid(load_npz_images(args.npz)[:args.max_images], args.out, args.nrow, args.title)
        print(args.out)
    else:
        run_figure_command(args, plot_metric_vs_step)


if __name__ == "__main__":
    run_cli(main)
