"""One DiT's quality figures: fid_local/kid_local of samples drawn with the suite's sampler, and the ε-prediction
error on real images (eps_mse), and the columns of their curve over a run's checkpoints (`benchmarks.quality_curve`,
docs/fid.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.fidelity import Extractor, Reference, as_rgb_uint8, compare
from tunebench.config import ConfigError, RunConfig
from tunebench.dataset_registry import DATASETS
from tunebench.datasets import load_dataset
from tunebench.diffusion import mean_flat
from tunebench.io import to_uint8
from tunebench.models import null_class
from tunebench.sampling import chunked_forward, labels_for_seeds, sample_batches
from tunebench.schedule import Schedule
from tunebench.training import normalise_pixels, to_model_space

SAMPLER = "ddim"
MEASURES = ("fid_local", "kid_local", "kid_local_std", "eps_mse")
EPS_TIMESTEPS = (100, 300, 500, 700, 900)
EPS_NOISE_SEED = 0  # one noise draw for every checkpoint: eps_mse differences then come from the weights alone
NUMBER_COLUMNS = {"step": int, "n": int, "steps": int, "denoise_images": int, "guidance": float,
                  **dict.fromkeys(MEASURES, float)}


@dataclass(frozen=True)
class Protocol:
    """How a DiT is measured. Every field is a column of the curve; rows of another protocol are never reused."""

    n: int  # samples for fid_local/kid_local, seeds 0..n-1
    steps: int  # DDIM steps
    guidance: float  # classifier-free guidance scale (1.0: none)
    labels: str  # "cycle" (sample i gets class i mod the dataset's classes) or "null" (the unconditional label)
    dataset: str  # the reference statistics and the denoising images come from this dataset's split
    split: str
    extractor: str  # the local feature network's id
    denoise_images: int  # real images of the eps_mse

    def columns(self) -> dict:
        """The protocol as the curve's columns, in their order."""
        return {"n": self.n, "sampler": SAMPLER, "steps": self.steps, "guidance": self.guidance,
                "labels": self.labels, "dataset": self.dataset, "split": self.split, "extractor": self.extractor,
                "seeds": f"0-{self.n - 1}", "denoise_images": self.denoise_images,
                "eps_timesteps": ",".join(map(str, EPS_TIMESTEPS))}

    def curve_columns(self) -> list[str]:
        """The curve CSV's columns: the step, the measures, the protocol's columns and the weights' SHA-256."""
        return ["step", *MEASURES, *self.columns(), "weights_sha256"]


def class_labels(model, protocol: Protocol, count: int) -> list[int]:
    """The label of each of `count` seeds (or images); a dataset with more classes than the model's table is an
    error, since its labels would be out of range."""
    classes, null = DATASETS[protocol.dataset].num_classes, null_class(model)
    if protocol.labels == "cycle" and classes > null:
        raise ConfigError(f"--dataset {protocol.dataset} has {classes} classes but the DiT's label table has {null}; "
                          "measure it on the dataset it was trained on, or pass --labels null")
    return labels_for_seeds(list(range(count)), protocol.labels, classes, null)


def draw_samples(model, run: RunConfig, protocol: Protocol, device: str, vae=None) -> torch.Tensor:
    """`protocol.n` samples (uint8 N×3×H×W) from seeds 0..n-1 with the suite's DDIM sampler; image i depends only on
    seed i, so the first k of n samples are the samples of n = k."""
    sample = dataclasses.replace(run.sample, sampler=SAMPLER, steps=protocol.steps, guidance_scale=protocol.guidance)
    batches = sample_batches(model, run.diffusion, sample, list(range(protocol.n)),
                             class_labels(model, protocol, protocol.n), vae=vae, vae_scaling=run.model.vae_scaling,
                             device=device, progress=False)
    images = np.concatenate([to_uint8(x) for _, x in batches])
    return as_rgb_uint8(torch.from_numpy(images).permute(0, 3, 1, 2))


def denoising_set(protocol: Protocol, run: RunConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """`protocol.denoise_images` uint8 images of the split, evenly spaced over it, and their labels.

    Evenly spaced rather than the first ones: the mini splits are stored class by class (the first 256 source test
    images are all of class 0), and spacing keeps every class in proportion without drawing random numbers.
    """
    data = load_dataset(protocol.dataset, protocol.split, run.data.resolution, run.data.channels)
    count = protocol.denoise_images
    if len(data) < count:
        raise ConfigError(f"--denoise-images {count}, but {protocol.dataset} {protocol.split} has only {len(data)} "
                          "images; pass at most that many")
    index = torch.arange(count) * len(data) // count
    return data.images[index], data.labels[index].long()


@torch.no_grad()
def denoising_error(model, run: RunConfig, protocol: Protocol, images: torch.Tensor, labels: torch.Tensor,
                    device: str, vae=None) -> float:
    """Mean over t in EPS_TIMESTEPS of the ε-prediction MSE on `images`, with noise from a fixed seed.

    The model sees the true labels (`protocol.labels` cycle) or the null label (null), without guidance. It runs on
    `run.sample.compute_chunk` rows at a time, as in sampling, so the value does not depend on a batch size.
    """
    model.eval()
    schedule, null = Schedule.linear(run.diffusion), null_class(model)
    generator = torch.Generator().manual_seed(EPS_NOISE_SEED)
    x0 = to_model_space(normalise_pixels(images).to(device), vae, run.model.vae_scaling, generator)
    y = (labels if protocol.labels == "cycle" else torch.full_like(labels, null)).to(device)
    errors = []
    for t in EPS_TIMESTEPS:
        noise = torch.randn(x0.shape, generator=generator).to(device)
        tt = torch.full((len(x0),), t, dtype=torch.long, device=device)
        out = chunked_forward(model, schedule.q_sample(x0, tt, noise), tt, y, run.sample.compute_chunk, null)
        errors.append(mean_flat((out[:, :x0.shape[1]].float() - noise) ** 2).mean())
    return float(torch.stack(errors).mean())


def measure(model, run: RunConfig, protocol: Protocol, reference: Reference, extractor: Extractor,
            denoising: tuple[torch.Tensor, torch.Tensor], device: str, vae=None) -> dict:
    """The MEASURES of one DiT: FID/KID of its samples against `reference`, and its denoising error on
    `denoising` (images, labels from `denoising_set`)."""
    scores = compare(draw_samples(model, run, protocol, device, vae), reference, extractor)
    return {"fid_local": scores["fid"], "kid_local": scores["kid_mean"], "kid_local_std": scores["kid_std"],
            "eps_mse": denoising_error(model, run, protocol, *denoising, device, vae)}
