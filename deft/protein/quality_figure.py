"""The prior-quality curve as a figure: valid Cα–Cα bonds and clash-free samples against the training step, with
95% intervals, and the training crops' level as a line and band."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # Agg: benchmarks.figures selects it on import
from matplotlib.ticker import MaxNLocator

from benchmarks.figures import save_figure
from deft.protein.quality import DATA_STEP

PANELS = (("valid_bonds", "valid Cα–Cα bonds (share)"), ("clash_free", "clash-free samples (share)"))


def plot_quality_curve(rows: list[dict], out: str | Path) -> None:
    """Two panels (`PANELS`) of the table's rows, which include the data row: the priors at numeric steps as points
    with interval bars joined by a line, the data row as a dashed line over its interval band."""
    priors = sorted((r for r in rows if isinstance(r["step"], int)), key=lambda r: r["step"])
    data = next(r for r in rows if r["step"] == DATA_STEP)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4), squeeze=False)
    for ax, (metric, label) in zip(axes[0], PANELS):
        ax.axhspan(data[f"{metric}_low"], data[f"{metric}_high"], color="grey", alpha=0.2, lw=0)
        ax.axhline(data[metric], color="grey", ls="--", label="training crops")
        if priors:
            steps = [r["step"] for r in priors]
            values = [r[metric] for r in priors]
            # max(0, ·): a bound read back from a CSV may sit a rounding error inside the share at 0 or 1
            errors = [[max(0.0, v - r[f"{metric}_low"]) for v, r in zip(values, priors)],
                      [max(0.0, r[f"{metric}_high"] - v) for v, r in zip(values, priors)]]
            ax.errorbar(steps, values, yerr=errors, marker="o", markersize=4, capsize=3, label="prior")
        ax.set_ylim(-0.02, 1.02)
        # Steps are whole optimiser updates; five bins keep 5-digit step labels from running into each other.
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"prior quality: {data['samples']} samples of {data['length']} residues, 95% intervals", fontsize=10)
    save_figure(fig, out)
