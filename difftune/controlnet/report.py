"""The ControlNet convergence table (per condition: the chance score and threshold, each base's sudden-convergence
step and final fidelity, the acceleration over the first base) and the fidelity curves.

    python -m difftune.controlnet.report table --layout controlnet --results results/mini/controlnet.csv \\
        --out-dir results/mini/tables --methods pretrained,difftune
    python -m difftune.controlnet.report figure controlnet --csv results/mini/controlnet_fidelity.csv \\
        --out results/mini/figures/controlnet.png

The table reads the rows of `difftune.controlnet.summary`; the figure its curve CSV (condition, base, step, mean,
std, chance, threshold).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # Agg: benchmarks.figures selects it on import
import pandas as pd

from benchmarks.figures import plot_lines, require_columns, save_figure
from benchmarks.report_cli import (
    add_figure_command,
    add_table_command,
    report_parser,
    run_figure_command,
    run_table_command,
)
from benchmarks.tables import Cell, Column, Table, mark_best, ordered, protocol_caption, seed_phrase, summarise
from tunebench.cli import run_cli


def controlnet_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """ControlNet convergence: per condition, the chance score and threshold, each base's sudden-convergence step
    and final fidelity, and the acceleration of every base over the first (the baseline)."""
    parts = rows["metric"].str.split(":", n=1, expand=True)
    rows = rows.assign(kind=parts[0], condition=parts[1])
    bases = methods or ordered(rows["method"], ["pretrained"])
    conditions = ordered(rows["condition"], ["canny", "blur", "lowres", "segmentation", "inpaint"])
    header = ["Condition", "Chance", "Threshold"]
    header += [f"{label} ({base})" for base in bases for label in ("Conv. step", "Final")]
    header += [f"Accel. ({base})" for base in bases[1:]]
    table = Table(name, header, rows=[], label_columns=1, caption="")
    score = Column("fidelity", "", 0, 3, show_std=False)
    step = Column("step", "", -1, 0, show_std=False)
    speed = Column("acceleration", "", +1, 2, show_std=False)

    def cell(kind: str, condition: str, base: str, column: Column) -> Cell:
        """One summarised value (— with the row's note when it has none)."""
        return summarise(rows[(rows["kind"] == kind) & (rows["condition"] == condition) & (rows["method"] == base)],
                         column, table)

    for condition in conditions:
        line = [Cell(condition), cell("chance_fidelity", condition, bases[0], score),
                cell("threshold", condition, bases[0], score)]
        steps = [cell("convergence_step", condition, base, step) for base in bases]
        mark_best(steps, step)
        for base, step_cell in zip(bases, steps):
            line += [step_cell, cell("final_fidelity", condition, base, score)]
        line += [cell("acceleration", condition, base, speed) for base in bases[1:]]
        table.rows.append(line)
    table.caption = (f"Sudden convergence of ControlNets on frozen bases ({', '.join(bases)}): the first scored "
                     "training step from which the control fidelity stays at or above the threshold (earliest in "
                     "bold); Final = fidelity at the last step; Accel. = the first base's step / this base's step. "
                     "Fidelity: edge F1 (canny), IoU (segmentation), PSNR dB (blur, lowres, inpaint on kept pixels); "
                     "chance = unrelated pairs of the probe images; threshold = halfway from chance to 1 (F1, IoU) "
                     f"or chance + 5 dB (PSNR). {seed_phrase(rows, ['method', 'metric'])}. {protocol_caption(rows)}")
    return table


FIDELITY_LABELS = {"canny": "edge F1", "segmentation": "mask IoU", "blur": "PSNR (dB)", "lowres": "PSNR (dB)",
                   "inpaint": "PSNR on kept pixels (dB)"}


def plot_controlnet_curves(df: pd.DataFrame, out: str | Path) -> None:
    """Control fidelity against training step, one panel per condition and one line per base, with the chance
    score (dotted) and the convergence threshold (dashed)."""
    require_columns(df, ("condition", "base", "step", "mean", "chance", "threshold"), "plot_controlnet_curves")
    conditions = [c for c in FIDELITY_LABELS if c in set(df["condition"])] + sorted(
        set(df["condition"]) - set(FIDELITY_LABELS))
    fig, axes = plt.subplots(1, len(conditions), figsize=(3.2 * len(conditions), 3.2), squeeze=False)
    for ax, condition in zip(axes[0], conditions):
        rows = df[df["condition"] == condition]
        for index, (base, points) in enumerate(rows.groupby("base")):
            plot_lines(ax, points.rename(columns={"mean": "value"}), "step", str(base), color=f"C{index}")
        ax.axhline(rows["threshold"].iloc[0], linestyle="--", color="grey", linewidth=1, label="threshold")
        ax.axhline(rows["chance"].iloc[0], linestyle=":", color="grey", linewidth=1, label="chance")
        ax.set_title(condition)
        ax.set_xlabel("training step")
        ax.set_ylabel(FIDELITY_LABELS.get(condition, "fidelity"))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, frameon=False)
    fig.suptitle("ControlNet control fidelity during training")
    fig.tight_layout()
    save_figure(fig, out)


def main(argv: list[str] | None = None) -> None:
    """Parse the sub-command and write the table or the figure."""
    parser, commands = report_parser("python -m difftune.controlnet.report", __doc__)
    add_table_command(commands, {"controlnet": "convergence steps by condition"})
    add_figure_command(commands, {"controlnet": "control fidelity vs training step, a panel per condition"})
    args = parser.parse_args(argv)
    if args.command == "table":
        run_table_command(args, controlnet_table)
    else:
        run_figure_command(args, plot_controlnet_curves)


if __name__ == "__main__":
    run_cli(main)
