"""Figures as PNG (matplotlib, Agg): the chain-of-forgetting curve, a metric against training step, ablations,
ControlNet fidelity curves and sample grids.

    python -m benchmarks.figures forgetting --csv results/mini/forgetting.csv --out results/mini/figures/forgetting.png
    python -m benchmarks.figures curve --csv results/mini/fid_vs_step.csv --out results/mini/figures/fid_vs_step.png
    python -m benchmarks.figures ablation --csv results/mini/ablation_tau.csv --out ablation_tau.png
    python -m benchmarks.figures controlnet --csv results/mini/controlnet_fidelity.csv --out controlnet.png
    python -m benchmarks.figures grid --npz runs/mini/source/samples/samples.npz --out grid.png --nrow 8 --title Source

Curve CSVs are long tables: forgetting needs the columns t0, direction, dataset, metric, value; curve needs step,
method, metric, value; ablation reads a results CSV whose methods are difftune.variants run names (one ablated
key, plus full_ft drawn as the reference line); controlnet reads difftune.controlnet.summary's curve CSV
(condition, base, step, mean, std, chance, threshold). Several rows at one point (seeds) are averaged, and a shaded
band shows their min–max.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster or CI machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from difftune.variants import parse_variant  # noqa: E402
from tunebench.cli import run_cli  # noqa: E402
from tunebench.config import ConfigError  # noqa: E402
from tunebench.io import atomic_path, load_npz_images  # noqa: E402

FORGETTING_COLUMNS = ("t0", "direction", "dataset", "metric", "value")
STEP_COLUMNS = ("step", "method", "metric", "value")
DIRECTION_STYLES = {"finetuned_then_pretrained": ("-", "fine-tuned for t ≥ t0, then pre-trained"),
                    "pretrained_then_finetuned": ("--", "pre-trained for t ≥ t0, then fine-tuned")}
DPI = 150


#################################################################################
#                              Input Checks                                     #
#################################################################################


def require_columns(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Raise naming the columns `what` needs that `df` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"{what} needs the columns {list(columns)}; missing {missing} (have {list(df.columns)})")


def single_metric(df: pd.DataFrame, what: str) -> str:
    """The one metric plotted (the y-axis label); several metrics on one axis would be meaningless."""
    metrics = sorted(set(df["metric"]))
    if len(metrics) != 1:
        raise ConfigError(f"{what} plots one metric, the data has {metrics or 'none'}; pass --metric")
    return metrics[0]


def metric_label(metric: str) -> str:
    """Y-axis label: the metric name, with the direction for the distance metrics."""
    return f"{metric} (lower is better)" if metric.startswith(("fid", "kid", "lpips")) else metric


#################################################################################
#                                  Figures                                      #
#################################################################################


def save_figure(fig: plt.Figure, out: str | Path) -> None:
    """Write the figure as PNG atomically and free it."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def plot_lines(ax: plt.Axes, points: pd.DataFrame, x: str, label: str, style: str = "-", color=None) -> None:
    """One line of the mean per x with markers, and a min–max band where several rows (seeds) share an x."""
    stats = points.groupby(x)["value"].agg(["mean", "min", "max"]).sort_index()
    line, = ax.plot(stats.index, stats["mean"], style, marker="o", markersize=4, label=label, color=color)
    if (stats["max"] > stats["min"]).any():
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.15, color=line.get_color())


def plot_forgetting_curve(df: pd.DataFrame, out: str | Path) -> None:
    """Chain of forgetting: the metric against the switch step t0, one line per direction and dataset."""
    require_columns(df, FORGETTING_COLUMNS, "plot_forgetting_curve")
    unknown = sorted(set(df["direction"]) - set(DIRECTION_STYLES))
    if unknown:
        raise ConfigError(f"unknown direction {unknown}; expected {list(DIRECTION_STYLES)}")
    metric = single_metric(df, "plot_forgetting_curve")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = dict(zip(sorted(set(df["dataset"])), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 10))
    for (direction, dataset), points in df.groupby(["direction", "dataset"]):
        style, meaning = DIRECTION_STYLES[direction]
        plot_lines(ax, points, "t0", f"{dataset}: {meaning}", style, colors[dataset])
    ax.set_xlabel("switch step t0 (diffusion timestep; 0 = data end, larger = noisier)")
    ax.set_ylabel(metric_label(metric))
    ax.set_title("Chain of forgetting: splicing the two models at t0")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    save_figure(fig, out)


def plot_metric_vs_step(df: pd.DataFrame, out: str | Path) -> None:
    """A metric (e.g. FID) against training step, one line per method."""
    require_columns(df, STEP_COLUMNS, "plot_metric_vs_step")
    metric = single_metric(df, "plot_metric_vs_step")
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method, points in df.groupby("method"):
        plot_lines(ax, points, "step", str(method))
    ax.set_xlabel("training step (optimizer updates)")
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"{metric} during fine-tuning")
    ax.grid(alpha=0.3)
    ax.legend(title="method", fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    save_figure(fig, out)


ABLATION_AXES = {"tau": ("τ: target P(t) ∝ (t+1)^τ, retention mirrored", "linear"),
                 "retention_weight": ("retention loss weight λ", "log"),
                 "retention_ratio": ("retention share of each batch", "linear"),
                 "retention_size": ("retention set size (generated images)", "log")}


def plot_ablation(df: pd.DataFrame, out: str | Path) -> None:
    """One ablation: the metric against the ablated value (from each row's run name), with the full_ft run and, for
    the retention set, the run replaying real source images as horizontal reference lines."""
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
        values = df.loc[df["method"] == name, "value"]
        if len(values):
            ax.axhline(values.mean(), linestyle=style, color=color, label=text)
    ax.set_xscale(xscale)
    ax.set_xticks(sorted(set(swept["x"])), [f"{x:g}" for x in sorted(set(swept["x"]))])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylabel(metric_label(metric))
    ax.set_title(f"Ablation of {keys[0]} on {', '.join(sorted(set(df['dataset'])))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    save_figure(fig, out)


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


def plot_sample_grid(images: np.ndarray, out: str | Path, nrow: int = 8, title: str = "") -> None:
    """Tile uint8 N×H×W×C images (C = 1 or 3) into a grid of `nrow` images per row, with a title."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise ConfigError(f"plot_sample_grid needs uint8 N×H×W×C images with C 1 or 3, got {images.dtype} "
                          f"{images.shape}")
    if nrow < 1:
        raise ConfigError(f"nrow must be at least 1, got {nrow}")
    grid = make_grid(torch.from_numpy(images).permute(0, 3, 1, 2), nrow=nrow, padding=2, pad_value=255)
    grid = grid.permute(1, 2, 0).numpy()
    height, width = grid.shape[:2]
    scale = max(3.0, min(10.0, width / 40)) / width  # inches per pixel: small grids are enlarged, big ones capped
    fig, ax = plt.subplots(figsize=(width * scale, height * scale + (0.4 if title else 0)))
    ax.imshow(grid[..., 0] if images.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255,
              interpolation="nearest")  # nearest keeps pixels crisp at small resolutions
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, out)


#################################################################################
#                                 Command Line                                  #
#################################################################################


def read_curve_csv(path: Path, metric: str | None, dataset: str | None) -> pd.DataFrame:
    """Read a long-format curve CSV, keeping only --metric and --dataset when given."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    df = pd.read_csv(path)
    for column, wanted in (("metric", metric), ("dataset", dataset)):
        if wanted is not None:
            require_columns(df, (column,), f"--{column}")
            df = df[df[column] == wanted]
            if df.empty:
                raise ConfigError(f"{path} has no rows with {column} {wanted!r}")
    return df


def main(argv: list[str] | None = None) -> None:
    """Parse the sub-command and write one figure."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("forgetting", "metric vs switch step t0 (chain of forgetting)"),
                            ("curve", "metric vs training step, one line per method"),
                            ("ablation", "metric vs the ablated value of difftune.variants run names"),
                            ("controlnet", "control fidelity vs training step, a panel per condition")):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--csv", type=Path, required=True, help="long-format CSV (columns: see the module help)")
        sub.add_argument("--metric", default=None, help="plot only this metric")
        sub.add_argument("--dataset", default=None, help="plot only this dataset")
        sub.add_argument("--out", type=Path, required=True, help="PNG to write")
    grid = commands.add_parser("grid", help="tile sample images", description="tile sample images into one PNG")
    grid.add_argument("--npz", type=Path, required=True, help=".npz with uint8 N×H×W×C 'images' (tunebench.sample)")
    grid.add_argument("--out", type=Path, required=True, help="PNG to write")
    grid.add_argument("--nrow", type=int, default=8, help="images per row")
    grid.add_argument("--max-images", type=int, default=64, help="show at most this many (the first ones)")
    grid.add_argument("--title", default="", help="title above the grid")
    args = parser.parse_args(argv)
    if args.command == "grid":
        images = load_npz_images(args.npz)[:args.max_images]
        plot_sample_grid(images, args.out, args.nrow, args.title)
    else:
        plot = {"forgetting": plot_forgetting_curve, "curve": plot_metric_vs_step,
                "ablation": plot_ablation, "controlnet": plot_controlnet_curves}[args.command]
        plot(read_curve_csv(args.csv, args.metric, args.dataset), args.out)
    print(args.out)


if __name__ == "__main__":
    run_cli(main)
