"""The ControlNet convergence table (per condition: the chance score and threshold, each objective's
sudden-convergence step and final fidelity over seeds, the acceleration over the first objective with its interval)
and the fidelity curves.

    python -m difftune.controlnet.report table --layout controlnet --results results/mini/controlnet.csv \\
        --out-dir results/mini/tables --methods standard,diff_tuning
    python -m difftune.controlnet.report figure controlnet --csv results/mini/controlnet_fidelity.csv \\
        --out results/mini/figures/controlnet.png
    python -m difftune.controlnet.report figure pictures \\
        --runs standard=runs/mini/controlnet/mnist5k/canny/standard/seed0 \\
        diff_tuning=runs/mini/controlnet/mnist5k/canny/diff_tuning/seed0 --out results/mini/figures/controlnet_canny.png

The table reads the rows of `difftune.controlnet.summary`; the figure its curve CSV (condition, objective, seed, step,
mean, std, chance, threshold); the picture grid the runs' kept evaluation samples (`difftune.controlnet.pictures`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmarks.report_cli import (
    add_figure_command,
    add_table_command,
    report_parser,
    run_figure_command,
    run_table_command,
)
from benchmarks.tables import Cell, Column, Table, mark_best, ordered, protocol_caption, seed_phrase, summarise
from difftune.controlnet.config import ALL_CONDITIONS, CONDITIONS
from tunebench.cli import run_cli
from tunebench.config import ConfigError


def controlnet_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """ControlNet convergence: per condition, the chance score and threshold, each objective's sudden-convergence
    step and final fidelity (over seeds), and the acceleration of every objective over the first (the baseline) with
    its interval; a last row `all` with the acceleration over every condition."""
    parts = rows["metric"].str.split(":", n=1, expand=True)
    rows = rows.assign(kind=parts[0], condition=parts[1])
    objectives = methods or ordered(rows["method"], ["standard"])
    conditions = ordered(rows["condition"], [*CONDITIONS, ALL_CONDITIONS])
    header = ["Condition", "Chance", "Threshold"]
    header += [f"{label} ({objective})" for objective in objectives for label in ("Conv. step", "Final")]
    header += [f"Accel. ({objective})" for objective in objectives[1:]]
    table = Table(name, header, rows=[], label_columns=1, caption="")
    probe = Column("fidelity", "", 0, 3, show_std=False)  # the same for every run: the probe images' own scores
    score = Column("fidelity", "", 0, 3)
    step = Column("step", "", -1, 0)
    speed = Column("acceleration", "", +1, 2, show_interval=True)

    def cell(kind: str, condition: str, objective: str, column: Column) -> Cell:
        """One summarised value (— with the rows' note when it has none)."""
        return summarise(rows[(rows["kind"] == kind) & (rows["condition"] == condition) &
                              (rows["method"] == objective)], column, table)

    for condition in conditions:
        line = [Cell(condition), cell("chance_fidelity", condition, objectives[0], probe),
                cell("threshold", condition, objectives[0], probe)]
        steps = [cell("convergence_step", condition, objective, step) for objective in objectives]
        mark_best(steps, step)
        for objective, step_cell in zip(objectives, steps):
            line += [step_cell, cell("final_fidelity", condition, objective, score)]
        line += [cell("acceleration", condition, objective, speed) for objective in objectives[1:]]
        table.rows.append(line)
    runs = rows[rows["kind"] == "convergence_step"]
    table.caption = (f"Sudden convergence of ControlNets on one frozen pre-trained model, trained with each objective "
                     f"({', '.join(objectives)}): the first scored training step from which the control fidelity "
                     "stays at or above the threshold (earliest in bold); Final = fidelity at the last step "
                     f"({seed_phrase(runs, ['method', 'metric'])}); Accel. = the {objectives[0]} objective's "
                     "convergence step / this objective's, as the ratio of geometric means over seeds with its 95% "
                     f"Welch t-interval in brackets (>1 = sooner; {ALL_CONDITIONS} = over every condition). "
                     "Fidelity: edge F1 (canny), IoU (segmentation), PSNR dB (blur, lowres, inpaint on kept pixels); "
                     "chance = unrelated pairs of the probe images; threshold = halfway from chance to 1 (F1, IoU) "
                     f"or chance + 5 dB (PSNR), fixed before training. {protocol_caption(rows)}")
    return table


FIDELITY_LABELS = {"canny": "edge F1", "segmentation": "mask IoU", "blur": "PSNR (dB)", "lowres": "PSNR (dB)",
                   "inpaint": "PSNR on kept pixels (dB)"}


def plot_controlnet_curves(df: pd.DataFrame, out: str | Path) -> None:
    """Control fidelity against training step, one panel per condition and one line per objective (the mean over
    seeds, a min–max band), with the chance score (dotted) and the convergence threshold (dashed)."""
    import matplotlib.pyplot as plt  # here, not at module level: --help stays fast

    from benchmarks.figures import plot_lines, require_columns, save_figure

    require_columns(df, ("condition", "objective", "seed", "step", "mean", "chance", "threshold"),
                    "plot_controlnet_curves")
    conditions = [c for c in FIDELITY_LABELS if c in set(df["condition"])] + sorted(
        set(df["condition"]) - set(FIDELITY_LABELS))
    fig, axes = plt.subplots(1, len(conditions), figsize=(3.2 * len(conditions), 3.2), squeeze=False)
    for ax, condition in zip(axes[0], conditions):
        rows = df[df["condition"] == condition]
        for index, objective in enumerate(ordered(df["objective"], ["standard"])):  # the baseline first, as C0
            points = rows[rows["objective"] == objective]
            label = f"{objective} (mean of {points['seed'].nunique()} seeds)"
            plot_lines(ax, points.rename(columns={"mean": "value"}), "step", label, color=f"C{index}")
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


PICTURES_HELP = ("test images, their condition and each objective's samples at a few training steps (the runs' kept "
                 "evaluation samples)")


def main(argv: list[str] | None = None) -> None:
    """Parse the sub-command and write the table or the figure."""
    parser, commands = report_parser("python -m difftune.controlnet.report", __doc__)
    add_table_command(commands, {"controlnet": "convergence steps by condition"})
    figures = add_figure_command(commands, {"controlnet": "control fidelity vs training step, a panel per condition"})
    pictures = figures.add_parser("pictures", help=PICTURES_HELP, description=PICTURES_HELP)
    pictures.add_argument("--runs", nargs="+", required=True, metavar="OBJECTIVE=FOLDER",
                          help="each objective's difftune.controlnet.train folder (one condition, one seed), in order")
    pictures.add_argument("--count", type=int, default=16, help="test images shown (at most those evaluated)")
    pictures.add_argument("--out", type=Path, required=True, help="PNG to write (and its caption NAME.json)")
    args = parser.parse_args(argv)
    if args.command == "table":
        run_table_command(args, controlnet_table)
    elif args.figure == "pictures":
        from difftune.controlnet.pictures import controlnet_grid

        pairs = [item.partition("=") for item in args.runs]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigError(f"--runs expects OBJECTIVE=FOLDER items, got {args.runs}")
        controlnet_grid({objective: Path(folder) for objective, _, folder in pairs}, args.count, args.out)
        print(args.out)
    else:
        run_figure_command(args, plot_controlnet_curves)


if __name__ == "__main__":
    run_cli(main)
