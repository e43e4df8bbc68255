"""PSNR, SSIM and LPIPS of paired images: per image, and as partial result rows (the mean over images with its
percentile-bootstrap 95% interval), for the reconstruction tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.image_metrics import MetricSummary, psnr, ssim
from benchmarks.intervals import bootstrap_mean_interval, bootstrap_note
from benchmarks.lpips_args import LPIPS_EXTRACTOR
from benchmarks.lpips_metric import lpips_distance


@dataclass(frozen=True)
class ReconstructionScores:
    """PSNR, SSIM and LPIPS of each image pair; LPIPS is None when it was skipped, and `lpips_reason` says why."""

    psnr: MetricSummary
    ssim: MetricSummary
    lpips: MetricSummary | None
    lpips_reason: str

    def per_image(self) -> dict[str, np.ndarray | None]:
        """Each metric's per-image values (None for a skipped LPIPS)."""
        return {"psnr": self.psnr.per_image, "ssim": self.ssim.per_image,
                "lpips": self.lpips.per_image if self.lpips else None}


def reconstruction_scores(pred, target, lpips_weights: str | None = None) -> ReconstructionScores:
    """Score every pred/target pair (images as `benchmarks.image_metrics` takes them)."""
    lpips_summary, lpips_reason = lpips_distance(pred, target, lpips_weights)
    return ReconstructionScores(psnr(pred, target), ssim(pred, target), lpips_summary, lpips_reason or "")


def mean_row(metric: str, summary: MetricSummary | None, extractor: str = "", note: str = "") -> dict:
    """A partial row of the mean over images, with the bootstrap interval of the images it averages (PSNR's finite
    ones) and how it was made appended to `note`; a skipped metric (None) keeps only `note`."""
    if summary is None:
        return {"metric": metric, "value": None, "extractor": extractor, "note": note}
    values = summary.per_image[np.isfinite(summary.per_image)]
    low, high = bootstrap_mean_interval(values)
    interval = bootstrap_note("the mean", len(values), "images") if len(values) else ""
    return {"metric": metric, "value": summary.mean, "ci_low": low, "ci_high": high, "extractor": extractor,
            "note": "; ".join(part for part in (note, interval) if part)}


def score_rows(scores: ReconstructionScores) -> list[dict]:
    """PSNR, SSIM and LPIPS as partial result rows (metric, value, ci_low, ci_high, extractor, note); LPIPS may be a
    skipped row."""
    identical = scores.psnr.n_identical
    psnr_note = (f"{identical} of {len(scores.psnr.per_image)} pairs identical (PSNR +inf), left out of the mean"
                 if identical else "")
    return [mean_row("psnr", scores.psnr, note=psnr_note), mean_row("ssim", scores.ssim),
            mean_row("lpips", scores.lpips, LPIPS_EXTRACTOR, scores.lpips_reason)]


def metric_rows(pred, target, lpips_weights: str | None = None) -> list[dict]:
    """`score_rows` of the pairs' scores."""
    return score_rows(reconstruction_scores(pred, target, lpips_weights))
