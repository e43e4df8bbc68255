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
import json
import logging
import time
from pathlib import Path

import safetensors.torch
import torch
from safetensors import safe_open
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from tunebench.cli import add_config_args, config_from_args, flag_overrides, print_config, run_cli, setup_logging
from tunebench.config import ConfigError, RunConfig, to_dict
from tunebench.datasets import SPLITS, load_dataset
from tunebench.io import atomic_path, git_commit, input_fingerprint, write_json
from tunebench.models import load_vae, vae_folder
from tunebench.speed import set_tf32
from tunebench.training import normalise_pixels, posterior

log = logging.getLogger("tunebench.latents")
PROVENANCE = "provenance"  # the safetensors metadata key of the provenance JSON


def cache_provenance(run: RunConfig, split: str, dataset) -> dict:
    """What a cache's moments depend on: the images (dataset, split, root, size, count) and the VAE's weights."""
    d = run.data
    return {"dataset": d.dataset, "split": split, "root": str(Path(d.root).resolve()) if d.root else None,
            "resolution": d.resolution, "channels": d.channels, "images": len(dataset),
            "vae": input_fingerprint(vae_folder(run.model.vae))}


def dataset_labels(dataset) -> torch.Tensor:
    """Every label of a dataset in order, without decoding an image (in-memory `.labels`, an image folder's
    `.samples`)."""
    if hasattr(dataset, "labels"):
        return torch.as_tensor(dataset.labels, dtype=torch.int64)
    return torch.tensor([label for _, label in dataset.samples], dtype=torch.int64)


def remake_command(run: RunConfig, path: str | Path) -> str:
    """The command that makes the cache `run` expects at `path`."""
    d = run.data
    root = f" --root {d.root}" if d.root else ""
    return (f"python -m tunebench.latents --scale {run.scale} --dataset {d.dataset}{root} --set data.resolution="
            f"{d.resolution} --set data.channels={d.channels} --set model.vae={run.model.vae} --out {path}")


def encode_dataset(dataset, vae, batch_size: int, device: str, workers: int = 0,
                   progress: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of every image's posterior, float32 N×2×C×h×w on the CPU; index 1 = flipped before encoding
    (as training flips pixels, and the VAE is not flip-equivariant)."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    mean = std = None
    start = 0
    for images, _ in tqdm(loader, desc="encoding", unit="batch", disable=not progress):
        pixels = normalise_pixels(images).to(device)
        moments = posterior(torch.cat([pixels, pixels.flip(-1)]), vae).float().cpu()  # (2B)×2×C×h×w
        both = torch.stack(moments.chunk(2), 1)  # B×flip×(mean, std)×C×h×w
        if mean is None:
            shape = (len(dataset), 2, *both.shape[3:])
            mean, std = torch.empty(shape), torch.empty(shape)
        mean[start:start + len(both)], std[start:start + len(both)] = both[:, :, 0], both[:, :, 1]
        start += len(both)
    return mean, std


def write_cache(path: str | Path, mean: torch.Tensor, std: torch.Tensor, labels: torch.Tensor, provenance: dict,
                extra: dict) -> None:
    """Write the cache atomically (its provenance inside, as metadata), then the .json sidecar with `extra`."""
    path = Path(path)
    with atomic_path(path) as tmp:
        safetensors.torch.save_file({"mean": mean, "std": std, "labels": labels}, str(tmp),
                                    metadata={PROVENANCE: json.dumps(provenance, sort_keys=True)})
    write_json(path.with_suffix(".json"), {**provenance, **extra})


class LatentCache:
    """A latent cache opened as the training dataset of `ImageBatches`, checked to match the run.

    The file is memory-mapped: a step reads only its images' moments, and data-parallel ranks share the pages. The
    cache's fingerprint is not part of a checkpoint's `inputs`, so a run can resume with or without it (both give
    the same latents); what those latents depend on (the images, the VAE) is what opening it compares.
    """

    def __init__(self, path: str | Path, run: RunConfig, dataset):
        """Open `path` for `run`, whose train split `dataset` is (unwrapped: its labels and spec are used)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config key 'data.latents': {path} does not exist; make it with "
                              f"`{remake_command(run, path)}`")
        self.file = safe_open(str(path), framework="pt")
        metadata = self.file.metadata() or {}
        if PROVENANCE not in metadata:
            raise ConfigError(f"config key 'data.latents': {path} is not a latent cache (no provenance); make one "
                              f"with `{remake_command(run, path)}`")
        stored, expected = json.loads(metadata[PROVENANCE]), cache_provenance(run, "train", dataset)
        differing = [key for key in expected if stored.get(key) != expected[key]]
        if differing:
            details = "; ".join(f"{key}: cache {stored.get(key)!r}, run {expected[key]!r}" for key in differing)
            raise ConfigError(f"latent cache {path} (data.latents) was made for other images or another VAE "
                              f"({details}); re-make it with `{remake_command(run, path)}`, or unset data.latents")
        self.labels = self.file.get_tensor("labels")
        if not torch.equal(self.labels, dataset_labels(dataset)):
            raise ConfigError(f"latent cache {path} (data.latents) holds other labels than {run.data.dataset}/train "
                              f"(were images added or moved?); re-make it with `{remake_command(run, path)}`")
        self.mean, self.std = self.file.get_slice("mean"), self.file.get_slice("std")
        self.spec = getattr(dataset, "spec", None)

    def __len__(self) -> int:
        """Number of images."""
        return len(self.labels)

    def posterior(self, indices: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """B×2×C×h×w (mean, std) of images `indices`, each flipped where `flips` is True."""
        rows = [(int(i), int(f)) for i, f in zip(indices, flips)]
        return torch.stack([torch.stack([self.mean[i, f], self.std[i, f]]) for i, f in rows])


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
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device of the VAE (default: cuda if available)")
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
    setup_logging()
    d = run.data
    dataset = load_dataset(d.dataset, args.split, d.resolution, d.channels, d.root)
    vae = load_vae(run.model.vae).to(args.device)
    set_tf32(run.train.tf32)  # encode at the precision training encodes at (tunebench.training.train)
    provenance = cache_provenance(run, args.split, dataset)
    started = time.perf_counter()
    mean, std = encode_dataset(dataset, vae, args.batch_size, args.device, args.workers, not args.no_progress)
    seconds = time.perf_counter() - started
    write_cache(args.out, mean, std, dataset_labels(dataset), provenance, {
        "vae_path": run.model.vae, "shape": list(mean.shape), "flip_index": {"0": "as is", "1": "flipped"},
        "batch_size": args.batch_size, "device": args.device, "encode_seconds": round(seconds, 1),
        "git_commit": git_commit(), "config": to_dict(run)})
    log.info("cached %d %s/%s posteriors (%s) in %s (%.0f s)", len(dataset), d.dataset, args.split,
             "×".join(map(str, mean.shape[1:])), args.out, seconds)


if __name__ == "__main__":
    run_cli(main)
