"""PSNR, SSIM and LPIPS of paired images as partial result rows, for the reconstruction tables."""

from __future__ import annotations

from benchmarks.image_metrics import psnr, ssim
from benchmarks.lpips_args import LPIPS_EXTRACTOR
from benchmarks.lpips_metric import lpips_distance


def metric_rows(pred, target, lpips_weights: str | None = None) -> list[dict]:
    """PSNR, SSIM and LPIPS as partial result rows (metric, value, extractor, note); LPIPS may be a skipped row."""
    psnr_summary, ssim_summary = psnr(pred, target), ssim(pred, target)
    psnr_note = (f"{psnr_summary.n_identical} of {len(psnr_summary.per_image)} pairs identical (PSNR +inf), "
                 "left out of the mean" if psnr_summary.n_identical else "")
    lpips_summary, lpips_reason = lpips_distance(pred, target, lpips_weights)
    return [
        {"metric": "psnr", "value": psnr_summary.mean, "extractor": "", "note": psnr_note},
        {"metric": "ssim", "value": ssim_summary.mean, "extractor": "", "note": ""},
        {"metric": "lpips", "value": lpips_summary.mean if lpips_summary else None, "extractor": LPIPS_EXTRACTOR,
         "note": lpips_reason or ""},
    ]
