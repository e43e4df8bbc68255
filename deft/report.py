"""DEFT Table 1: methods grouped by task, with PSNR, SSIM, LPIPS, KID, network passes and wall time, and the total
time of the baselines relative to DEFT's in the caption.

    python -m deft.report table --layout deft --results results/mini/deft_main.csv --out-dir results/mini/tables \\
        [--experiment deft_main] [--metric kid_local] [--methods dps,reddiff,deft]

Layout `protocol`: the protocol switches beside their defaults (deft.protocol_table; results/SCALE/deft_protocol.csv).
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from benchmarks.report_cli import add_table_command, report_parser, run_table_command
from benchmarks.results import ResultsError
from benchmarks.tables import Cell, Column, Table, mark_best, ordered, protocol_caption, seed_phrase, select, summarise
from deft.operators.task_settings import TASK_PRESETS
from deft.protocol_table import protocol_table
from tunebench.cli import run_cli

DEFT_COLUMNS = (Column("psnr", "PSNR↑", +1, 2), Column("ssim", "SSIM↑", +1, 3), Column("lpips", "LPIPS↓", -1, 3),
                Column("kid_local", "KID×10³↓", -1, 2, 1000.0),  # stored raw, shown ×10³ as in DEFT's tables
                Column("nfe", "NFE", 0, 0, show_std=False), Column("backbone_vjps", "VJPs", 0, 0, show_std=False),
                Column("time_train_s", "Train (s)", 0, 1), Column("time_sample_s", "Sample (s)", 0, 1),
                Column("time_total_s", "Total (s)", -1, 1))


def time_ratios(rows: pd.DataFrame, against: tuple[str, ...] = ("dps", "reddiff")) -> str:
    """'Total time of DPS / DEFT: …' per task: the paper's speed-up claim counts DEFT's training time."""
    totals = rows[rows["metric"] == "time_total_s"].groupby(["dataset", "method"])["value"].mean()
    parts = []
    for task in ordered(rows["dataset"], TASK_PRESETS):
        if (task, "deft") not in totals or not totals[(task, "deft")] > 0:
            continue
        ratios = [f"{m} {totals[(task, m)] / totals[(task, 'deft')]:.1f}×" for m in against if (task, m) in totals]
        if ratios:
            parts.append(f"{task}: {', '.join(ratios)}")
    return ("Total time (training + sampling) relative to DEFT's: " + "; ".join(parts) + ". ") if parts else ""


def deft_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None, metric: str = "kid_local") -> Table:
    """DEFT Table 1: methods grouped by task (the dataset column): quality, KID (`metric`), network passes and time."""
    columns = [dataclasses.replace(c, metric=metric) if c.metric == "kid_local" else c for c in DEFT_COLUMNS]
    metrics = [c.metric for c in columns]
    rows = select(rows, metrics, methods)
    if rows.empty:
        raise ResultsError(f"no rows for {name} with metrics {metrics} (methods {methods or 'all'})")
    table = Table(name, ["Task", "Method", *[c.label for c in columns]], rows=[], label_columns=2, caption="")
    for task in ordered(rows["dataset"], TASK_PRESETS):
        task_rows = rows[rows["dataset"] == task]
        group = []
        for method in [m for m in (methods or ordered(task_rows["method"])) if m in set(task_rows["method"])]:
            method_rows = task_rows[task_rows["method"] == method]
            group.append([Cell(task if not group else ""), Cell(method),
                          *[summarise(method_rows[method_rows["metric"] == c.metric], c, table) for c in columns]])
        for index, column in enumerate(columns, start=2):
            mark_best([row[index] for row in group], column)
        table.group_starts.append(len(table.rows))
        table.rows.extend(group)
    table.caption = (f"{time_ratios(rows)}PSNR and SSIM on [0, 1] images (data_range 1), LPIPS (AlexNet, v0.1), "
                     f"{metric} ×10³ against "
                     "the ground-truth test images; NFE = network evaluations (the frozen model's; the amortised "
                     "model's "
                     "own) and VJPs = backprops through the frozen model, per image; wall seconds to train (DEFT's "
                     "head) and to reconstruct all test images, and their total; "
                     f"{seed_phrase(rows, ['method', 'dataset', 'metric'])}; best per task in bold (↑ higher, ↓ lower "
                     f"is better). {protocol_caption(rows)}")
    return table


def main(argv: list[str] | None = None) -> None:
    """Parse the flags, read the results and write the tables."""
    parser, commands = report_parser("python -m deft.report", __doc__)
    table = add_table_command(commands, {"deft": "PSNR/SSIM/LPIPS/KID/NFE/time by task",
                                         "protocol": "each protocol switch's PSNR/SSIM/LPIPS beside its default's"})
    table.add_argument("--metric", default="kid_local", help="layout deft: the KID column's metric (default kid_local)")
    args = parser.parse_args(argv)
    if args.layout == "protocol":
        run_table_command(args, protocol_table)
    else:
        run_table_command(args, deft_table, metric=args.metric)


if __name__ == "__main__":
    run_cli(main)
