"""Diff-Tuning's tables and figures: Table 1 (methods × datasets of one FID-like metric, with the Average and the
relative change against a baseline), the PEFT-compatibility table, the training-seed replicates, the
chain-of-forgetting curve and the ablations.

    python -m difftune.report table --layout difftune --results results/mini/difftune_main.csv \\
        --out-dir results/mini/tables [--experiment difftune_main] [--metric fid_local] [--baseline full_ft] \\
        [--methods full_ft,bitfit,difftune]
    python -m difftune.report table --layout peft --results results/mini/difftune_peft.csv \\
        --out-dir results/mini/tables
    python -m difftune.report table --layout seeds --results results/mini/difftune_seeds.csv \\
        --out-dir results/mini/tables [--metric fid_local] [--baseline full_ft]
    python -m difftune.report table --layout regime --results results/mini/difftune_regime.csv \\
        --out-dir results/mini/tables [--metric fid_local] [--baseline full_ft]
    python -m difftune.report figure forgetting --csv results/mini/forgetting.csv \\
        --out results/mini/figures/forgetting.png
    python -m difftune.report figure ablation --csv results/mini/ablation_tau.csv \\
        --out results/mini/figures/ablation_tau.png --metric fid_local
    python -m difftune.report figure regime --csv results/mini/difftune_regime.csv \\
        --out results/mini/figures/difftune_regime.png --metric fid_local
    python -m difftune.report figure samples --dataset mnist5k --samples full_ft=runs/mini/samples/mnist5k/full_ft \\
        diff_tuning=runs/mini/samples/mnist5k/diff_tuning --pretrained runs/mini/pictures/pretrained \\
        --out results/mini/figures/samples_mnist5k.png [--count 16]
    python -m difftune.report figure splice --npz runs/mini/forgetting_images.npz --csv results/mini/forgetting.csv \\
        --out results/mini/figures/forgetting_splice.png

The forgetting CSV has the columns t0, direction, dataset, metric, value (`difftune.forgetting` writes it; the figure
has a panel per metric, FID and KID, or only --metric's); an ablation figure reads a results CSV whose methods are
`difftune.variants` run names (one ablated key, plus full_ft drawn as the reference line); the regime figure reads
the fine-tuning-length study's per-seed rows (`method@seed=S@steps=N`). Several rows at one point (seeds) are
averaged, and a shaded band shows their min–max. The picture grids (`samples`, `splice`: `difftune.pictures`) show
the same seeds in every row, with their protocol in a caption sidecar for the report page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.report_cli import (
    add_figure_command,
    add_table_command,
    report_parser,
    run_figure_command,
    run_table_command,
)
from benchmarks.results import ResultsError
from benchmarks.tables import (
    DASH,
    Cell,
    Column,
    Table,
    interval_caption,
    interval_cell,
    interval_hull,
    intervals_apart,
    mark_best,
    mark_best_separated,
    ordered,
    protocol_caption,
    seed_phrase,
    select,
    summarise,
)
from difftune.seed_replicates import AVERAGE, change_metric, std_metric
from difftune.variants import parse_variant
from tunebench.cli import run_cli
from tunebench.config import ConfigError
from tunebench.dataset_registry import DOWNSTREAM_DATASETS, PAPER_DATASETS

DATASET_ORDER = DOWNSTREAM_DATASETS + PAPER_DATASETS  # the mini sets, then the paper's Table 1 order
FORGETTING_COLUMNS = ("t0", "direction", "dataset", "metric", "value")
DIRECTION_STYLES = {"finetuned_then_pretrained": ("-", "fine-tuned for t ≥ t0, then pre-trained"),
                    "pretrained_then_finetuned": ("--", "pre-trained for t ≥ t0, then fine-tuned")}


#################################################################################
#                                     Tables                                    #
#################################################################################


def difftune_table(rows: pd.DataFrame, name: str, metric: str = "fid_local", baseline: str = "full_ft",
                   methods: list[str] | None = None) -> Table:
    """Diff-Tuning Table 1: methods × datasets of one FID-like metric, plus Average and relative change vs baseline."""
    rows = select(rows, [metric], methods)
    if rows.empty:
        raise ResultsError(f"no rows with metric {metric!r} for {name} (methods {methods or 'all'}); pass --metric")
    methods = methods or ordered(rows["method"], [baseline])
    if baseline not in set(rows["method"]):
        raise ResultsError(f"baseline method {baseline!r} must be among the rows' methods with {metric} values in "
                           f"{name} ({sorted(set(rows['method']))}); pass --baseline (and include it in --methods)")
    datasets = ordered(rows["dataset"], DATASET_ORDER)
    value_column = Column(metric, metric, -1, 2, show_interval=True)
    table = Table(name, ["Method", *datasets, "Average", f"Rel. change vs {baseline}"], rows=[], label_columns=1,
                  caption="")
    averages = {}
    scored = {(method, d): rows[(rows["method"] == method) & (rows["dataset"] == d)] for method in methods
              for d in datasets}
    for method in methods:
        cells = [summarise(scored[method, d], value_column, table) for d in datasets]
        numbers = [cell.number for cell in cells]
        averages[method] = float(np.mean(numbers))  # NaN when a dataset is missing: no average over a subset
        table.rows.append([Cell(method), *cells])
    for method, row in zip(methods, table.rows):
        change = 100.0 * (averages[method] - averages[baseline]) / averages[baseline]
        row.append(Cell(DASH, footnote=table.footnote("no Average: a dataset has no value"))
                   if np.isnan(averages[method]) else Cell(f"{averages[method]:.2f}", averages[method]))
        row.append(Cell(DASH) if np.isnan(change) else Cell(f"{change:+.1f}%", change))
    for index, d in enumerate(datasets, start=1):
        mark_best_separated([row[index] for row in table.rows], value_column,
                            lambda i, j, d=d: intervals_apart(scored[methods[i], d], scored[methods[j], d]))
    table.caption = (f"{metric} (lower is better), {seed_phrase(rows, ['method', 'dataset'])}; "
                     f"{interval_caption(rows)}Average over the {len(datasets)} datasets; relative change of the "
                     f"Average vs {baseline} (its interval over datasets and seeds: the claims ledger); bold: the "
                     f"lowest of a dataset only where its 95% interval overlaps no other method's (the Average has "
                     f"no interval here and is not marked). {protocol_caption(rows)}")
    return table


PEFT_LABELS = {"none": "all weights", "bitfit": "BitFit", "difffit": "DiffFit", "lora": "LoRA"}


def peft_table(rows: pd.DataFrame, name: str, metric: str = "fid_local", methods: list[str] | None = None) -> Table:
    """The PEFT-compatibility table: each PEFT method with standard fine-tuning and with Diff-Tuning (rows), FID per
    dataset with its 95% interval, the trainable share, and Diff-Tuning's relative change of the Average against the
    same PEFT method. The comparison drawn is within a PEFT method, so that is where a dataset's lower FID is bold,
    and only where the two intervals do not overlap."""
    scores = select(rows, [metric], methods)
    if scores.empty:
        raise ResultsError(f"no rows with metric {metric!r} for {name}; pass --metric")
    variants = {method: parse_variant(method) for method in set(scores["method"])}
    pefts = ordered({v.peft for v in variants.values()}, list(PEFT_LABELS))
    objectives = ordered({v.method for v in variants.values()}, ["full_ft", "diff_tuning"])
    datasets = ordered(scores["dataset"], DATASET_ORDER)
    value_column = Column(metric, metric, -1, 2, show_interval=True)
    table = Table(name, ["PEFT", "Objective", "Trainable %", *datasets, "Average", "Rel. change vs full_ft"],
                  rows=[], label_columns=2, caption="")
    for peft in pefts:
        table.group_starts.append(len(table.rows))
        averages, scored = {}, []
        for objective in objectives:
            method = next((m for m, v in variants.items() if v.peft == peft and v.method == objective), None)
            if method is None:
                continue
            share = summarise(rows[(rows["method"] == method) & (rows["metric"] == "trainable_percent")],
                              Column("trainable_percent", "", 0, 2, show_std=False), table)
            scored.append([scores[(scores["method"] == method) & (scores["dataset"] == d)] for d in datasets])
            cells = [summarise(dataset_rows, value_column, table) for dataset_rows in scored[-1]]
            averages[objective] = float(np.mean([cell.number for cell in cells]))
            average = Cell(DASH) if np.isnan(averages[objective]) else Cell(f"{averages[objective]:.2f}",
                                                                             averages[objective])
            base = averages.get("full_ft", float("nan"))
            change = 100.0 * (averages[objective] - base) / base if objective != "full_ft" else float("nan")
            table.rows.append([Cell(PEFT_LABELS[peft]), Cell(objective), share, *cells, average,
                               Cell(DASH) if np.isnan(change) else Cell(f"{change:+.1f}%", change)])
        group = table.rows[table.group_starts[-1]:]
        for index in range(len(datasets)):
            mark_best_separated([row[3 + index] for row in group], value_column,
                                lambda i, j, index=index, scored=scored: intervals_apart(scored[i][index],
                                                                                         scored[j][index]))
    table.caption = (f"{metric} (lower is better), {seed_phrase(scores, ['method', 'dataset'])}; "
                     f"{interval_caption(scores)}Trainable % counts the trained parameters (the label table "
                     f"included) of the model; Average over the {len(datasets)} datasets; relative change of a "
                     f"Diff-Tuning Average vs full_ft with the same PEFT method (its interval over the datasets: the "
                     f"claims ledger); bold: the lower of a PEFT method's two objectives on a dataset only where their "
                     f"95% intervals do not overlap (the Average has no interval here and is not marked). "
                     f"{protocol_caption(scores)}")
    return table


def seeds_table(rows: pd.DataFrame, name: str, metric: str = "fid_local", baseline: str = "full_ft",
                methods: list[str] | None = None) -> Table:
    """The training-seed replicates (difftune.seed_replicates): datasets and their Average × each method's metric
    (mean ± std over seeds) and each other method's paired relative change against the baseline with its 95%
    interval."""
    variants = rows["method"].map(parse_variant)
    seeds = sorted({v.seed for v in variants if v.key == "seed"})
    summary = rows[variants.map(lambda v: v.key is None)]  # the replicates' own rows are method@seed=S
    if summary[summary["metric"] == metric].empty:
        raise ResultsError(f"no {metric} summary rows for {name}; pass --metric")
    methods = methods or ordered(summary["method"], [baseline])
    others = [method for method in methods if method != baseline]
    datasets = ordered(set(summary["dataset"]) - {AVERAGE}, DATASET_ORDER) + [AVERAGE]
    table = Table(name, ["Dataset", *methods, *(f"Rel. change of {m} vs {baseline} [95% CI]" for m in others)],
                  rows=[], label_columns=1, caption="", group_starts=[len(datasets) - 1])
    value_column = Column(metric, metric, -1, 2)

    def lookup(dataset: str, method: str, metric_name: str) -> pd.Series | None:
        """The one summary row of (dataset, method, metric), or None."""
        found = summary[(summary["dataset"] == dataset) & (summary["method"] == method)
                        & (summary["metric"] == metric_name)]
        return found.iloc[0] if len(found) else None

    for dataset in datasets:
        cells = []
        for method in methods:
            mean, spread = lookup(dataset, method, metric), lookup(dataset, method, std_metric(metric))
            if mean is None:
                cells.append(Cell(DASH))
            elif spread is None:  # the Average: its spread is in the caption's interval, not a std
                cells.append(Cell(f"{mean['value']:.2f}", mean["value"]))
            else:
                cells.append(Cell(f"{mean['value']:.2f} ± {spread['value']:.2f}", mean["value"]))
        mark_best(cells, value_column)
        changes = []
        for method in others:
            change = lookup(dataset, method, change_metric(metric))
            changes.append(Cell(DASH) if change is None else
                           interval_cell(change["value"], change["ci_low"], change["ci_high"], 1, "%", signed=True))
        table.rows.append([Cell("Average" if dataset == AVERAGE else dataset), *cells, *changes])
    table.caption = (f"{metric} (lower is better) of each run trained with {len(seeds)} training seeds "
                     f"({', '.join(map(str, seeds))}) and sampled with the same sampling seeds: mean ± sample std over "
                     f"the seeds; best per row in bold. Relative change: mean over the seeds of the paired change "
                     f"100·(method − {baseline})/{baseline}, each pair the two runs of one training seed, with its 95% "
                     "t-interval over the seeds. Average: mean over the datasets; the interval of its change comes "
                     "from the per-dataset variances over seeds (datasets fixed, Welch–Satterthwaite degrees of "
                     f"freedom). {protocol_caption(summary)}")
    return table


def regime_table(rows: pd.DataFrame, name: str, metric: str = "fid_local", baseline: str = "full_ft",
                 methods: list[str] | None = None) -> Table:
    """The fine-tuning-length study: for each training length, the seeds layout (seeds_table) of the runs trained
    that long, under a first column naming the length."""
    variants = rows["method"].map(parse_variant)
    lengths = sorted({v.steps for v in variants} - {None})
    if not lengths:
        raise ResultsError(f"{name}: no run names with @steps=N; the regime layout reads the fine-tuning-length study")
    table = None
    for steps in lengths:
        of_length = variants.map(lambda v, s=steps: v.steps == s)
        part = seeds_table(rows[of_length].assign(method=variants[of_length].map(lambda v: v.with_steps(None).name)),
                           name, metric, baseline, methods)
        if table is None:
            table = Table(name, ["Fine-tuning steps", *part.header], rows=[], label_columns=2, caption="",
                          group_starts=[])
            table.caption = (f"Each block: the runs fine-tuned for that many steps (the main comparison's length and "
                             f"longer ones continued from its checkpoints). {part.caption}")
        offset = len(table.rows)
        table.group_starts += ([offset] if offset else []) + [offset + start for start in part.group_starts]
        table.rows += [[Cell(str(steps) if i == 0 else ""), *row] for i, row in enumerate(part.rows)]
    return table


#################################################################################
#                                    Figures                                    #
#################################################################################


# What each panel of the forgetting figure measures, by the metric's prefix (benchmarks.fidelity; docs/fid.md).
FORGETTING_PANELS = {"fid": "FID: distance of Gaussian fits (means, covariances)",
                     "kid": "KID: unbiased kernel MMD² (cubic kernel)"}


def plot_forgetting_curve(df: pd.DataFrame, out: str | Path) -> None:
    """Chain of forgetting: each metric of the CSV (FID, then KID: sorted names) against the switch step t0 in a
    panel of its own, one line per direction and dataset."""
    import matplotlib.pyplot as plt  # here, not at module level: --help stays fast

    from benchmarks.figures import metric_label, plot_lines, require_columns, save_figure

    require_columns(df, FORGETTING_COLUMNS, "plot_forgetting_curve")
    unknown = sorted(set(df["direction"]) - set(DIRECTION_STYLES))
    if unknown:
        raise ConfigError(f"unknown direction {unknown}; expected {list(DIRECTION_STYLES)}")
    metrics = sorted(set(df["metric"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.0 * len(metrics), 4.2), squeeze=False)
    colors = dict(zip(sorted(set(df["dataset"])), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10))
    for ax, metric in zip(axes[0], metrics):
        for (direction, dataset), points in df[df["metric"] == metric].groupby(["direction", "dataset"]):
            style, meaning = DIRECTION_STYLES[direction]
            plot_lines(ax, points, "t0", f"{dataset}: {meaning}", style, colors[dataset])
        ax.set_xlabel("switch step t0 (0 = data end, larger = noisier)")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(FORGETTING_PANELS.get(metric.split("_")[0], metric), fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=1, frameon=False)
    fig.suptitle("Chain of forgetting: splicing the two models at t0")
    fig.tight_layout()
    save_figure(fig, out)


ABLATION_AXES = {"tau": ("τ: target P(t) ∝ (t+1)^τ, retention mirrored", "linear"),
                 "retention_weight": ("retention loss weight λ", "log"),
                 "retention_ratio": ("retention share of each batch", "linear"),
                 "retention_size": ("retention set size (generated images)", "log")}


def plot_ablation(df: pd.DataFrame, out: str | Path) -> None:
    """One ablation: the metric against the ablated value (from each row's run name), each point with its 95%
    interval where the rows have one, with the full_ft run and, for the retention set, the run replaying real source
    images as horizontal reference lines (their intervals shaded)."""
    import matplotlib.pyplot as plt  # here, not at module level: --help stays fast

    from benchmarks.figures import metric_label, plot_lines, require_columns, save_figure, single_metric

    require_columns(df, ("method", "dataset", "metric", "value"), "plot_ablation")
    df = df.reset_index(drop=True)
    metric = single_metric(df, "plot_ablation")
    variants = df["method"].map(parse_variant)
    swept = df[variants.map(lambda v: v.key in ABLATION_AXES)].assign(x=variants.map(lambda v: v.value))
    keys = sorted({v.key for v in variants if v.key in ABLATION_AXES})
    if len(keys) != 1:
        raise ConfigError(f"an ablation figure sweeps one key; the rows sweep {keys or 'none'}")
    label, xscale = ABLATION_AXES[keys[0]]
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    method = parse_variant(swept["method"].iloc[0]).method
    plot_lines(ax, swept, "x", method, color="C0")
    references = {"full_ft": ("--", "C3", "full_ft (no retention, uniform t)"),
                  f"{method}@retention=source": (":", "C2", f"{method}, real source images")}
    for name, (style, color, text) in references.items():
        reference = df[df["method"] == name]
        if len(reference):
            ax.axhline(reference["value"].mean(), linestyle=style, color=color, label=text)
            interval = interval_hull(reference) if len(reference) == 1 and "ci_low" in df else None
            if interval:
                ax.axhspan(*interval, color=color, alpha=0.1)
    ax.set_xscale(xscale)
    ax.set_xticks(sorted(set(swept["x"])), [f"{x:g}" for x in sorted(set(swept["x"]))])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"Ablation of {keys[0]} on {', '.join(sorted(set(df['dataset'])))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    save_figure(fig, out)


def plot_regime(df: pd.DataFrame, out: str | Path) -> None:
    """The fine-tuning-length study: the metric of each training seed's run against its fine-tuning steps, one panel
    per dataset, one line per method (mean over seeds, min–max band)."""
    import matplotlib.pyplot as plt  # here, not at module level: --help stays fast

    from benchmarks.figures import metric_label, plot_lines, require_columns, save_figure, single_metric

    require_columns(df, ("method", "dataset", "metric", "value"), "plot_regime")
    variants = df["method"].map(parse_variant)
    replicate = variants.map(lambda v: v.key == "seed" and v.steps is not None)
    runs = df[replicate].assign(steps=variants[replicate].map(lambda v: v.steps),
                                base=variants[replicate].map(lambda v: v.method))
    metric = single_metric(runs, "plot_regime")
    datasets = ordered(set(runs["dataset"]), DATASET_ORDER)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.8), squeeze=False)
    colors = {"full_ft": "C3", "diff_tuning": "C0"}
    for ax, dataset in zip(axes[0], datasets):
        for method, points in runs[runs["dataset"] == dataset].groupby("base"):
            plot_lines(ax, points, "steps", str(method), color=colors.get(method))
        ax.set_xscale("log")
        ticks = sorted(set(runs["steps"]))
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("fine-tuning steps")
        ax.set_ylabel(metric_label(metric))
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, frameon=False)
    seeds = sorted({v.seed for v in variants[replicate]})
    fig.suptitle(f"Fine-tuning length: mean over training seeds {', '.join(map(str, seeds))} (band: min–max)")
    fig.tight_layout()
    save_figure(fig, out)


#################################################################################
#                                  Command Line                                 #
#################################################################################


TABLES_WITH_BASELINE = {"difftune": difftune_table, "seeds": seeds_table, "regime": regime_table}
FIGURES = {"forgetting": (plot_forgetting_curve, "metric vs switch step t0 (chain of forgetting)"),
           "ablation": (plot_ablation, "metric vs the ablated value of difftune.variants run names"),
           "regime": (plot_regime, "metric vs fine-tuning steps (the fine-tuning-length study)")}


PICTURES = {"samples": "real images and each model's samples on the same seeds (one dataset)",
            "splice": "the chain-of-forgetting splice images at each t0 on the same seeds"}


def add_picture_commands(figures) -> None:
    """The picture grids' sub-commands (`figure samples`, `figure splice`), which read sample files, not a CSV."""
    samples = figures.add_parser("samples", help=PICTURES["samples"], description=PICTURES["samples"])
    samples.add_argument("--dataset", required=True, help="the downstream dataset (its training split is shown)")
    samples.add_argument("--samples", nargs="+", required=True, metavar="METHOD=FOLDER",
                         help="each fine-tuned model's tunebench.sample folder, in row order")
    samples.add_argument("--pretrained", type=Path, required=True,
                         help="the pre-trained model's tunebench.sample folder on the same seeds (null label)")
    samples.add_argument("--root", default=None, help="a paper-scale dataset's folder (data_root/NAME)")
    samples.add_argument("--count", type=int, default=16, help="seeds shown: the first ones of every folder")
    samples.add_argument("--out", type=Path, required=True, help="PNG to write (and its caption NAME.json)")
    splice = figures.add_parser("splice", help=PICTURES["splice"], description=PICTURES["splice"])
    splice.add_argument("--npz", type=Path, required=True, help="difftune.forgetting --images-out")
    splice.add_argument("--csv", type=Path, required=True, help="the forgetting curve CSV (its protocol columns)")
    splice.add_argument("--out", type=Path, required=True, help="PNG to write (and its caption NAME.json)")


def draw_picture(args) -> None:
    """Write the picture grid of `figure samples` or `figure splice` and print its path."""
    from difftune.pictures import samples_grid, splice_grid

    if args.figure == "samples":
        pairs = [item.partition("=") for item in args.samples]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigError(f"--samples expects METHOD=FOLDER items, got {args.samples}")
        samples_grid(args.dataset, {name: Path(folder) for name, _, folder in pairs}, args.pretrained, args.count,
                     args.out, args.root)
    else:
        splice_grid(args.npz, args.csv, args.out)
    print(args.out)


def main(argv: list[str] | None = None) -> None:
    """Parse the sub-command and write the tables or the figure."""
    parser, commands = report_parser("python -m difftune.report", __doc__)
    table = add_table_command(commands, {"difftune": "methods × datasets of one metric",
                                         "peft": "PEFT methods × objectives",
                                         "seeds": "datasets × methods over training seeds, with intervals",
                                         "regime": "the seeds layout for each fine-tuning length"})
    table.add_argument("--metric", default="fid_local", help="the cell metric (default fid_local)")
    table.add_argument("--baseline", default="full_ft",
                       help="difftune, seeds and regime layouts: method for the relative change (default full_ft)")
    figures = add_figure_command(commands, {name: plots for name, (_, plots) in FIGURES.items()})
    add_picture_commands(figures)
    args = parser.parse_args(argv)
    if args.command == "figure" and args.figure in PICTURES:
        draw_picture(args)
    elif args.command == "figure":
        run_figure_command(args, FIGURES[args.figure][0])
    elif args.layout in TABLES_WITH_BASELINE:
        run_table_command(args, TABLES_WITH_BASELINE[args.layout], metric=args.metric, baseline=args.baseline)
    else:
        run_table_command(args, peft_table, metric=args.metric)


if __name__ == "__main__":
    run_cli(main)
