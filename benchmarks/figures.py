"""Figures as PNG (matplotlib, Agg) from long-format CSVs: input checks, a mean line with a min–max band over the
rows (seeds) that share an x, atomic saving, and the generic figures: a metric against training step (one line per
method), several metrics of one run against step, a grid of sample images, and the picture grids the report shows
(rows = methods, columns = the same seeds or test images, each with its protocol caption beside it). The papers'
figures live with their methods (`difftune.report`, `difftune.controlnet.report`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on cluster or CI machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tunebench.config import ConfigError  # noqa: E402
from tunebench.io import atomic_path, write_json  # noqa: E402

STEP_COLUMNS = ("step", "method", "metric", "value")
DPI = 150


#################################################################################
#                          Reading and Input Checks                             #
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
    """One line of the mean per x with markers, and a min–max band where several rows (seeds) share an x; where each
    x has one row with a 95% interval (ci_low, ci_high), that interval as an error bar."""
    stats = points.groupby(x)["value"].agg(["mean", "min", "max", "count"]).sort_index()
    line, = ax.plot(stats.index, stats["mean"], style, marker="o", markersize=4, label=label, color=color)
    if (stats["max"] > stats["min"]).any():
        ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.15, color=line.get_color())
    elif {"ci_low", "ci_high"} <= set(points.columns) and (stats["count"] == 1).all():
        rows = points.set_index(x).sort_index()
        has = rows["ci_low"].notna() & rows["ci_high"].notna()
        if has.any():
            rows = rows[has]
            below, above = rows["value"] - rows["ci_low"], rows["ci_high"] - rows["value"]
            ax.errorbar(rows.index, rows["value"], yerr=[below, above], fmt="none", ecolor=line.get_color(),
                        elinewidth=1, capsize=3)


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


def plot_columns_vs_step(df: pd.DataFrame, columns: tuple[str, ...], out: str | Path, title: str = "") -> None:
    """Several metrics of one run against training step, one panel per column of `df` (a wide table, e.g. a
    quality curve), sharing the step axis."""
    require_columns(df, ("step", *columns), "plot_columns_vs_step")
    fig, axes = plt.subplots(len(columns), 1, figsize=(6.4, 2.4 * len(columns)), sharex=True, squeeze=False)
    for ax, column in zip(axes[:, 0], columns):
        plot_lines(ax, df.rename(columns={column: "value"}), "step", column)
        ax.set_ylabel(metric_label(column))
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("training step (optimizer updates)")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))  # no ticks between updates on short curves
    if title:
        axes[0, 0].set_title(title, fontsize=10)
    save_figure(fig, out)


def checked_images(images: np.ndarray, what: str) -> np.ndarray:
    """`images` as an array, raising naming `what` unless it is a non-empty uint8 N×H×W×C stack with C 1 or 3."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or not len(images):
        raise ConfigError(f"{what} needs uint8 N×H×W×C images with C 1 or 3, got {images.dtype} {images.shape}")
    return images


def plot_sample_grid(images: np.ndarray, out: str | Path, nrow: int = 8, title: str = "") -> None:
    """Tile uint8 N×H×W×C images (C = 1 or 3) into a grid of `nrow` images per row, with a title."""
    images = checked_images(images, "plot_sample_grid")
    if nrow < 1:
        raise ConfigError(f"nrow must be at least 1, got {nrow}")
    # Imported here: torch takes seconds to import, and the report CLIs' --help and tables need none of it.
    import torch
    from torchvision.utils import make_grid

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


def as_rgb(images: np.ndarray, what: str) -> np.ndarray:
    """uint8 N×H×W×3 from uint8 N×H×W×C with C 1 or 3 (grey repeated), so rows of both kinds share one grid."""
    images = checked_images(images, what)
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def plot_image_rows(rows: list[tuple[str, np.ndarray]], out: str | Path, title: str = "",
                    column_labels: list[str] | None = None) -> None:
    """The report's picture grid: one row per (label, images) pair, one column per seed or test image, so column j
    shows the same seed (or image) in every row. Rows may differ in resolution (a measurement beside its
    reconstruction): each image fills one square cell."""
    if not rows:
        raise ConfigError("plot_image_rows needs at least one row")
    rows = [(label, as_rgb(images, f"row {label!r}")) for label, images in rows]
    counts = {label: len(images) for label, images in rows}
    if len(set(counts.values())) != 1:
        raise ConfigError(f"every row must show the same seeds or images; the rows have {counts} images")
    columns = len(rows[0][1])
    if column_labels is not None and len(column_labels) != columns:
        raise ConfigError(f"{len(column_labels)} column labels for {columns} columns")
    cell = 0.62  # inches per image: 16 columns of 32-pixel images stay legible in a ~10-inch-wide PNG
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.6 + cell * columns, 0.3 + cell * len(rows)),
                             squeeze=False, gridspec_kw={"wspace": 0.04, "hspace": 0.04})
    for r, (label, images) in enumerate(rows):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image, interpolation="nearest")  # nearest keeps pixels crisp at small resolutions
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
            if r == 0 and column_labels is not None:
                ax.set_title(column_labels[c], fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, out)


def caption_path(png: str | Path) -> Path:
    """The caption sidecar of a picture: NAME.json beside NAME.png, read by the report page."""
    return Path(png).with_suffix(".json")


def write_caption(png: str | Path, caption: str, protocol: dict) -> None:
    """Write a picture's caption (what it shows) and its protocol (model, seeds, sampler, steps, guidance, commit)
    beside it, so the report captions every picture with how it was made."""
    write_json(caption_path(png), {"caption": caption, "protocol": protocol})
