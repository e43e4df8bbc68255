"""Cache the VAE posteriors of a dataset split, both flips, so that latent-space training needs no encoder pass.

    python -m tunebench.latents --scale paper --dataset food101 --root /data/food101 \\
        --set model.vae=/path/to/DiT-XL-2-256 --out runs/paper/latents/food101.safetensors

Writes OUT, a safetensors file: `mean` and `std` (float32 N×2×C×h×w; index 1 of dim 1 is the image flipped
horizontally before encoding), `labels` (int64 N) and the provenance as metadata; and OUT with suffix .json (the same
provenance, the resolved config, the git commit). Training reads it with --set data.latents=OUT: each step takes the
moments of its images and flips and draws mean + std·ε from the step's generator, as encoding them would
(docs/workflow.md, "Latent cache"). OUT is written under a temporary name and renamed when complete, so a killed job
leaves no partial file (it starts over: the encoding takes minutes).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from tunebench.cli import add_config_args, config_from_args, flag_overrides, print_config, run_cli, setup_logging
from tunebench.config import ConfigError, to_dict
from tunebench.dataset_registry import SPLITS

log = logging.getLogger("tunebench.latents")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The shared config flags plus what to encode, where to write it and how."""
    parser = argparse.ArgumentParser(prog="python -m tunebench.latents", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--out", required=True, type=Path,
                        help="the cache file (.safetensors); its provenance is written beside it (.json)")
    parser.add_argument("--dataset", help="dataset to encode (sets data.dataset)")
    parser.add_argument("--root", help="folder of a paper-scale dataset (sets data.root)")
    parser.add_argument("--split", choices=SPLITS, default="train", help="split to encode (training reads train)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="images per encoder call (each is encoded as is and flipped, in the same call)")
    parser.add_argument("--device", help="device of the VAE (default: cuda if available)")
    parser.add_argument("--workers", type=int, default=0, help="image-decoding processes (for image folders)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, encode the split, write the cache and its sidecar."""
    args = parse_args(argv)
    run = config_from_args(args, shortcuts=flag_overrides((args.dataset, "data", "dataset"),
                                                          (args.root, "data", "root")))
    if args.dry_run:
        print_config(run)
        return
    if not run.model.vae:
        raise ConfigError("config key 'model.vae' is not set: a latent cache holds VAE posteriors; pass "
                          "--set model.vae=FOLDER (a VAE folder, or a pipeline folder with vae/)")
    if args.batch_size <= 0 or args.workers < 0:
        raise ConfigError(f"--batch-size must be positive and --workers >= 0, got {args.batch_size} and "
                          f"{args.workers}")
    # Imported here: torch and diffusers take seconds to import, and --help or a dry run needs neither.
    from tunebench.datasets import load_dataset
    from tunebench.io import git_commit
    from tunebench.latent_cache import cache_provenance, dataset_labels, encode_dataset, write_cache
    from tunebench.models import load_vae
    from tunebench.speed import default_device, set_tf32

    setup_logging()
    device = args.device or default_device()
    d = run.data
    dataset = load_dataset(d.dataset, args.split, d.resolution, d.channels, d.root)
    vae = load_vae(run.model.vae).to(device)
    set_tf32(run.train.tf32)  # encode at the precision training encodes at (tunebench.training.train)
    provenance = cache_provenance(run, args.split, dataset)
    started = time.perf_counter()
    mean, std = encode_dataset(dataset, vae, args.batch_size, device, args.workers, not args.no_progress)
    seconds = time.perf_counter() - started
    write_cache(args.out, mean, std, dataset_labels(dataset), provenance, {
        "vae_path": run.model.vae, "shape": list(mean.shape), "flip_index": {"0": "as is", "1": "flipped"},
        "batch_size": args.batch_size, "device": device, "encode_seconds": round(seconds, 1),
        "git_commit": git_commit(), "config": to_dict(run)})
    log.info("cached %d %s/%s posteriors (%s) in %s (%.0f s)", len(dataset), d.dataset, args.split,
             "×".join(map(str, mean.shape[1:])), args.out, seconds)


if __name__ == "__main__":
    run_cli(main)
