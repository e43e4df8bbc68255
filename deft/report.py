"""DEFT Table 1: methods grouped by task, with PSNR, SSIM, LPIPS, KID, network passes and wall time, and the total
time of the baselines relative to DEFT's in the caption. A task's best value is bold only where a 95% interval tells
it from every other method's: PSNR, SSIM and LPIPS by the paired interval of the per-image differences (--per-image,
the CSVs of deft.evaluate; without them they are not marked), KID by intervals that do not overlap.

    python -m deft.report table --layout deft --results results/mini/deft_main.csv --out-dir results/mini/tables \\
        --per-image runs/mini/metrics/deft_main/*/*.per_image.csv [--experiment deft_main] [--metric kid_local] \\
        [--methods dps,reddiff,deft]

    python -m deft.report figure recon --task inpaint --runs deft=runs/mini/deft/inpaint/deft \\
        dps=runs/mini/deft/inpaint/dps --out results/mini/figures/deft_inpaint.png [--count 16]

The picture (`deft.pictures`): ground truth, the measurement and each method's reconstruction of the same test
images, its protocol in a caption sidecar. Layout `protocol`: the protocol switches beside their defaults
(deft.protocol_table; results/SCALE/deft_protocol.csv).
Layout `paired`: DEFT − each baseline image by image with paired intervals (deft.paired_table;
results/SCALE/deft_paired.csv).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from benchmarks.intervals import BOOTSTRAP_RESAMPLES
from benchmarks.paired import paired_difference
from benchmarks.per_image import SCORES, read_runs
from benchmarks.report_cli import add_table_command, report_parser, run_table_command
from benchmarks.results import ResultsError
from benchmarks.tables import (
    Cell,
    Column,
    Table,
    intervals_apart,
    mark_best_separated,
    ordered,
    protocol_caption,
    seed_phrase,
    select,
    summarise,
)
from benchmarks.total_time import PAPER_TIME_IMAGES, TIME_BASELINES, ratios_to_deft
from deft.operators.task_settings import TASK_PRESETS
from deft.paired_table import paired_table
from deft.protocol_table import protocol_table
from tunebench.cli import run_cli
from tunebench.config import ConfigError

DEFT_COLUMNS = (Column("psnr", "PSNR↑", +1, 2), Column("ssim", "SSIM↑", +1, 3), Column("lpips", "LPIPS↓", -1, 3),
                Column("kid_local", "KID×10³↓", -1, 2, 1000.0),  # stored raw, shown ×10³ as in DEFT's tables
                Column("nfe", "NFE", 0, 0, show_std=False), Column("backbone_vjps", "VJPs", 0, 0, show_std=False),
                # Costs are not marked: one measurement each, with no interval to tell a lead from a tie.
                Column("time_train_s", "Train (s)", 0, 1), Column("time_sample_s", "Sample (s)", 0, 1),
                Column("time_total_s", "Total (s)", 0, 1))
Runs = dict[tuple[str, str], pd.DataFrame]  # per-image scores by (task, method), benchmarks.per_image.read_runs


def time_ratios(rows: pd.DataFrame, against: tuple[str, ...] = TIME_BASELINES) -> str:
    """'Total time … relative to DEFT's: …' per task, on the test images and at the paper's count of images: the
    paper's speed-up claim counts DEFT's training time (benchmarks.total_time)."""
    tasks = ordered(rows["dataset"], TASK_PRESETS)

    def listed(ratios: dict[tuple[str, str], float]) -> str:
        """'task: dps 0.8×, reddiff 0.4×; …' in task order."""
        parts = [f"{task}: " + ", ".join(f"{m} {ratios[(task, m)]:.1f}×" for m in against if (task, m) in ratios)
                 for task in tasks if any((task, m) in ratios for m in against)]
        return "; ".join(parts)

    measured = listed(ratios_to_deft(rows, against=against))
    at_paper_count = listed(ratios_to_deft(rows, PAPER_TIME_IMAGES, against=against))
    if not measured:
        return ""
    return (f"Total time (training + sampling) relative to DEFT's, on the test images: {measured}. "
            + (f"At the paper's count of {PAPER_TIME_IMAGES} images (training + the sampling time scaled): "
               f"{at_paper_count}. " if at_paper_count else ""))


def separation(metric: str, task: str, methods: list[str], rows: pd.DataFrame, per_image: Runs | None):
    """`separated(i, j)` for `mark_best_separated` on one task's column: whether a 95% interval tells method i from
    method j. PSNR, SSIM and LPIPS: the paired interval of their per-image differences excludes 0 (False without
    both runs' per-image scores); KID: their intervals do not overlap."""
    def by_images(i: int, j: int) -> bool:
        """The paired interval of the per-image differences excludes 0."""
        first, second = ((per_image or {}).get((task, methods[k])) for k in (i, j))
        if first is None or second is None:
            return False
        difference = paired_difference(first, second, metric)
        return difference is not None and difference.excludes_zero()

    def by_intervals(i: int, j: int) -> bool:
        """The two methods' intervals do not overlap."""
        first, second = (rows[(rows["method"] == methods[k]) & (rows["metric"] == metric)] for k in (i, j))
        return intervals_apart(first, second)

    return by_images if metric in SCORES else by_intervals


def deft_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None, metric: str = "kid_local",
               per_image: Runs | None = None) -> Table:
    """DEFT Table 1: methods grouped by task (the dataset column): quality, KID (`metric`), network passes and time;
    the best per task bold where a 95% interval tells it from every other method (`separation`)."""
    columns = [dataclasses.replace(c, metric=metric) if c.metric == "kid_local" else c for c in DEFT_COLUMNS]
    metrics = [c.metric for c in columns]
    rows = select(rows, metrics, methods)
    if rows.empty:
        raise ResultsError(f"no rows for {name} with metrics {metrics} (methods {methods or 'all'})")
    table = Table(name, ["Task", "Method", *[c.label for c in columns]], rows=[], label_columns=2, caption="")
    for task in ordered(rows["dataset"], TASK_PRESETS):
        task_rows = rows[rows["dataset"] == task]
        group, shown = [], [m for m in (methods or ordered(task_rows["method"])) if m in set(task_rows["method"])]
        for method in shown:
            method_rows = task_rows[task_rows["method"] == method]
            group.append([Cell(task if not group else ""), Cell(method),
                          *[summarise(method_rows[method_rows["metric"] == c.metric], c, table) for c in columns]])
        for index, column in enumerate(columns, start=2):
            mark_best_separated([row[index] for row in group], column,
                                separation(column.metric, task, shown, task_rows, per_image))
        table.group_starts.append(len(table.rows))
        table.rows.extend(group)
    images = ("a 95% paired interval of the per-image differences (percentile bootstrap over the test images, image "
              f"indices redrawn jointly, {BOOTSTRAP_RESAMPLES} resamples) excludes 0 for PSNR, SSIM and LPIPS"
              if per_image else
              "PSNR, SSIM and LPIPS are not marked (no per-image scores were given)")
    table.caption = (f"{time_ratios(rows)}PSNR and SSIM on [0, 1] images (data_range 1), LPIPS (AlexNet, v0.1), "
                     f"{metric} ×10³ against "
                     "the ground-truth test images; NFE = network evaluations (the frozen model's; the amortised "
                     "model's "
                     "own) and VJPs = backprops through the frozen model, per image; wall seconds to train (DEFT's "
                     "head) and to reconstruct all test images, and their total; "
                     f"{seed_phrase(rows, ['method', 'dataset', 'metric'])}. Bold: the best per task (↑ higher, ↓ "
                     f"lower is better) where it is told apart from every other method of the task: {images}, and "
                     f"the 95% intervals of {metric} do not overlap (footnotes say how they were made); costs are "
                     f"not marked. {protocol_caption(rows)}")
    return table


RECON_HELP = "ground truth, the measurement and every method's reconstruction of the same test images"


def draw_recon(args) -> None:
    """Write `figure recon`'s picture grid (deft.pictures) and print its path."""
    from deft.pictures import recon_grid

    pairs = [item.partition("=") for item in args.runs]
    if any(not sep for _, sep, _ in pairs):
        raise ConfigError(f"--runs expects METHOD=FOLDER items, got {args.runs}")
    recon_grid(args.task, {name: Path(folder) for name, _, folder in pairs}, args.count, args.out)
    print(args.out)


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, read the results and write the tables."""
    parser, commands = report_parser("python -m deft.report", __doc__)
    table = add_table_command(commands, {"deft": "PSNR/SSIM/LPIPS/KID/NFE/time by task",
                                         "protocol": "each protocol switch's PSNR/SSIM/LPIPS beside its default's",
                                         "paired": "DEFT − each baseline, image by image, with paired intervals"})
    table.add_argument("--metric", default="kid_local", help="layout deft: the KID column's metric (default kid_local)")
    table.add_argument("--per-image", nargs="+", default=None, type=Path, metavar="CSV",
                       help="layout deft: the methods' per-image score CSVs (deft.evaluate --per-image); PSNR, SSIM "
                            "and LPIPS are bold only where their paired interval excludes a tie")
    figure = commands.add_parser("figure", help="draw one picture grid", description="draw one picture grid")
    pictures = figure.add_subparsers(dest="figure", required=True)
    recon = pictures.add_parser("recon", help=RECON_HELP, description=RECON_HELP)
    recon.add_argument("--task", required=True, help="the task (its name in the title)")
    recon.add_argument("--runs", nargs="+", required=True, metavar="METHOD=FOLDER",
                       help="each method's deft.reconstruct folder (recon.npz, truth.npz, summary.json), in row order")
    recon.add_argument("--count", type=int, default=16, help="test images shown: the first ones")
    recon.add_argument("--out", type=Path, required=True, help="PNG to write (and its caption NAME.json)")
    args = parser.parse_args(argv)
    if args.command == "figure":
        draw_recon(args)
    elif args.layout == "protocol":
        run_table_command(args, protocol_table)
    elif args.layout == "paired":
        run_table_command(args, paired_table)
    else:
        run_table_command(args, deft_table, metric=args.metric,
                          per_image=read_runs(args.per_image) if args.per_image else None)


if __name__ == "__main__":
    run_cli(main)
