"""The latent cache of a dataset split: both flips' VAE posteriors, written by `python -m tunebench.latents` and opened
as a training dataset (`LatentCache`), checked to hold the run's images encoded by the run's VAE."""

from __future__ import annotations

import json
from pathlib import Path

import safetensors.torch
import torch
from safetensors import safe_open
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from tunebench.config import ConfigError, RunConfig
from tunebench.io import atomic_path, input_fingerprint, write_json
from tunebench.models import vae_folder
from tunebench.training import normalise_pixels, posterior

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
        self.class_names = list(getattr(dataset, "class_names", []))  # a folder's, for the model's sidecar

    def __len__(self) -> int:
        """Number of images."""
        return len(self.labels)

    def posterior(self, indices: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
        """B×2×C×h×w (mean, std) of images `indices`, each flipped where `flips` is True."""
        rows = [(int(i), int(f)) for i, f in zip(indices, flips)]
        return torch.stack([torch.stack([self.mean[i, f], self.std[i, f]]) for i, f in rows])
