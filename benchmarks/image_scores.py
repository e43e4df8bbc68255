"""Compute PSNR, SSIM and LPIPS of reconstructions against targets and add them as rows to a results CSV.

    python -m benchmarks.image_scores --pred runs/x/recon.npz --target runs/x/truth.npz \\
        --results results/mini/deft.csv --experiment deft_inpaint --method deft --dataset inpaint \\
        [--lpips-weights alexnet-owt-7be5be79.pth]

The metrics and their conventions are `benchmarks.image_metrics`'s (docs/results.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.lpips_args import add_lpips_args
from tunebench.cli import run_cli


def main(argv: list[str] | None = None) -> None:
    """Compute PSNR, SSIM and LPIPS of --pred against --target and add the rows to --results."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.image_scores", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", type=Path, required=True, help=".npz of uint8 N×H×W×C 'images' (reconstructions)")
    parser.add_argument("--target", type=Path, required=True, help=".npz with the matching ground-truth 'images'")
    parser.add_argument("--results", type=Path, required=True, help="results CSV to add the rows to (made if new)")
    for column in ("experiment", "method", "dataset"):
        parser.add_argument(f"--{column}", required=True, help=f"the rows' {column} column")
    parser.add_argument("--seed", type=int, default=0, help="the seed (or first seed) the reconstructions used")
    for column in ("scale", "model", "sampler", "reference", "config_hash"):
        parser.add_argument(f"--{column.replace('_', '-')}", default="", help=f"provenance: the rows' {column} column")
    parser.add_argument("--steps", type=int, default=None, help="provenance: sampler steps")
    parser.add_argument("--guidance", type=float, default=None, help="provenance: guidance scale")
    add_lpips_args(parser)
    args = parser.parse_args(argv)
    # the metrics import torch, lpips and pandas: only after parsing, so --help answers at once
    from benchmarks.reconstruction_rows import metric_rows
    from benchmarks.results import append_rows
    from tunebench.io import git_commit, load_npz_images

    pred, target = (load_npz_images(path).transpose(0, 3, 1, 2) for path in (args.pred, args.target))
    shared = {column: getattr(args, column) for column in ("experiment", "method", "dataset", "seed", "scale", "model",
                                                           "steps", "sampler", "guidance", "reference", "config_hash")}
    shared.update(n_samples=len(pred), git_commit=git_commit())
    append_rows(args.results, [{**shared, **row} for row in metric_rows(pred, target, args.lpips_weights)])


if __name__ == "__main__":
    run_cli(main)
