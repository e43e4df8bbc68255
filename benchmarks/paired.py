"""Two runs compared image by image on the same test images: the mean over images of the per-image difference of a
score (run A − run B), with a paired percentile-bootstrap 95% interval.

The bootstrap redraws image indices with replacement and takes both runs' scores of the drawn images together, so
the spread between images (some are hard for every method) cancels out of the difference. Redrawing indices jointly
and averaging the differences is the bootstrap of the mean of the per-image differences, so it is
`benchmarks.intervals.bootstrap_mean_interval` of them (its resamples and seed; Efron & Tibshirani 1993, ch. 13).
The runs' per-image CSVs come from `benchmarks.per_image`; they pair only when they hold the same test images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmarks.intervals import bootstrap_mean_interval, bootstrap_note
from benchmarks.per_image import SCORES
from benchmarks.results import ResultsError


@dataclass(frozen=True)
class PairedDifference:
    """The mean per-image difference A − B over the `n` images where both scores are finite, its 95% interval, and
    how many images were left out (a PSNR of +inf: an identical pair in either run)."""

    mean: float
    low: float
    high: float
    n: int
    left_out: int

    def excludes_zero(self) -> bool:
        """Whether the interval tells the two runs apart (does not contain a tie)."""
        return self.low > 0 or self.high < 0


def check_pairing(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Two runs' per-image frames pair image by image: the same dataset, the same number of images, and the same
    truth image at every index; the error names both files."""
    files = f"{a['file'].iloc[0]} and {b['file'].iloc[0]}"
    if a["dataset"].iloc[0] != b["dataset"].iloc[0]:
        raise ResultsError(f"{files} score different datasets ({a['dataset'].iloc[0]}, {b['dataset'].iloc[0]}); "
                           "only runs on one task's test images pair")
    if len(a) != len(b):
        raise ResultsError(f"{files} hold {len(a)} and {len(b)} images; paired runs score the same test images")
    differ = np.flatnonzero(a["truth_sha256"].to_numpy() != b["truth_sha256"].to_numpy())
    if len(differ):
        raise ResultsError(f"{files} have different truth images at {len(differ)} indexes (first {differ[0]}); "
                           "paired runs must reconstruct the same test images in the same order")


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> PairedDifference | None:
    """A − B of `metric` image by image (pairing checked), or None when either run has no finite value of it."""
    check_pairing(a, b)
    first, second = a[metric].to_numpy(dtype=float), b[metric].to_numpy(dtype=float)
    keep = np.isfinite(first) & np.isfinite(second)
    if not keep.any():
        return None
    differences = first[keep] - second[keep]
    low, high = bootstrap_mean_interval(differences)
    return PairedDifference(float(differences.mean()), low, high, int(keep.sum()), int((~keep).sum()))


def difference_rows(a: pd.DataFrame, b: pd.DataFrame, method: str, dataset: str) -> list[dict]:
    """Partial result rows (method, dataset, metric, value, ci_low, ci_high, n_samples, note) of run A − run B image
    by image: metric `{score}_diff` for every score of `benchmarks.per_image.SCORES`, under `method`."""
    rows = []
    for score in SCORES:
        difference = paired_difference(a, b, score)
        row = {"method": method, "dataset": dataset, "metric": f"{score}_diff", "n_samples": len(a)}
        if difference is None:
            rows.append({**row, "value": None, "note": f"{score} skipped: a run has no finite per-image values"})
            continue
        notes = [bootstrap_note("the mean paired difference (image indices redrawn jointly)", difference.n, "images")]
        if difference.left_out:
            notes.insert(0, f"{difference.left_out} images with PSNR +inf (an identical pair) left out")
        rows.append({**row, "value": difference.mean, "ci_low": difference.low, "ci_high": difference.high,
                     "n_samples": difference.n, "note": "; ".join(notes)})
    return rows


def paired_rows(runs: dict[tuple[str, str], pd.DataFrame], reference: str) -> list[dict]:
    """`difference_rows` of `reference` − each other method on each dataset, under the other method's name. A
    dataset with other methods but no `reference` run is an error."""
    rows = []
    for dataset in sorted({dataset for dataset, _ in runs}):
        others = sorted(method for d, method in runs if d == dataset and method != reference)
        if others and (dataset, reference) not in runs:
            raise ResultsError(f"no per-image scores of {reference} on {dataset}, to pair with {others}")
        for method in others:
            rows += difference_rows(runs[(dataset, reference)], runs[(dataset, method)], method, dataset)
    return rows
