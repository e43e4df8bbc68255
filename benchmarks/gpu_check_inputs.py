"""The inputs of `scripts/gpu-check.sh`'s pipeline steps, made offline: a DiT and a VAE with random weights (the real
architectures; skipped when a local model is given), a synthetic image folder laid out as a paper dataset, and
`inputs.json` with what the report needs (counted FLOPs per image, the device's peak, versions, the weights used).

The suite's own CLIs then run on them as on real data: `tunebench.latents` caches the folder's posteriors,
`difftune.retention --kind source` takes a retention set from it, `difftune.finetune` fine-tunes from the cache and
`tunebench.sample` samples the export. Speed does not depend on the weights or on what the images show.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import diffusers
import numpy as np
import torch
from PIL import Image

from benchmarks.throughput_bench import (
    count_forward_flops,
    count_module_flops,
    count_training_flops,
    decode_flops,
    make_dit,
    model_name,
    sd_vae_architecture,
    tiny_vae_architecture,
)
from tunebench.config import ConfigError, RunConfig
from tunebench.dataset_registry import DATASETS
from tunebench.io import git_commit, write_json
from tunebench.model_card import CardFacts
from tunebench.models import export_dit
from tunebench.speed import device_name, peak_flops

log = logging.getLogger("benchmarks.gpu_check")

DATASET = "artbench10"  # the paper dataset with the fewest classes: its folder needs one subfolder per class
SAMPLE_STEPS, GUIDANCE = 50, 1.5  # the pipeline's sampling step: DDIM-50 with classifier-free guidance 1.5
# The VAE architecture by its downsampling factor (image side / latent side): SD's at paper scale, the tiny one on CPU.
VAE_ARCHITECTURES = {8: ("SD VAE architecture", sd_vae_architecture), 2: ("tiny VAE", tiny_vae_architecture)}


def vae_architecture(run: RunConfig) -> tuple[str, diffusers.AutoencoderKL]:
    """(its name, the random-weight VAE) whose downsampling maps data.resolution to model.sample_size."""
    factor = run.data.resolution // run.model.sample_size
    if factor not in VAE_ARCHITECTURES or factor * run.model.sample_size != run.data.resolution:
        raise ConfigError(f"data.resolution {run.data.resolution} / model.sample_size {run.model.sample_size}: no "
                          f"VAE downsamples by that factor (known: {', '.join(map(str, VAE_ARCHITECTURES))})")
    name, build = VAE_ARCHITECTURES[factor]
    return name, build()


def write_images(root: Path, per_class: int, side: int, seed: int = 0) -> int:
    """root/train/CLASS/NNN.png for every class of DATASET: seeded uniform-noise RGB images of side × side; returns
    how many were written."""
    rng = np.random.default_rng(seed)
    for label in range(DATASETS[DATASET].num_classes):
        folder = root / "train" / f"class{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(folder / f"{index:03d}.png")
    return DATASETS[DATASET].num_classes * per_class


def make_inputs(run: RunConfig, work: Path, per_class: int, device: str, model: str | None = None) -> dict:
    """Write work/images/DATASET, and (without `model`) work/dit and work/vae with random weights; return and write
    work/inputs.json."""
    work.mkdir(parents=True, exist_ok=True)
    vae_name, vae = vae_architecture(run)  # built in any case: its config gives the counted encode and decode FLOPs
    if model is None:
        facts = CardFacts(method="random weights for the GPU check's pipeline steps (not trained)", base_model=None,
                          data="none", loader="tunebench.models.load_dit(folder)")
        export_dit(make_dit(run, None, "cpu"), work / "dit", run,
                   extra={"weights": "random (benchmarks.throughput_bench.make_dit)"}, facts=facts)
        vae.save_pretrained(work / "vae", safe_serialization=True)
    images = write_images(work / "images" / DATASET, per_class, run.data.resolution)
    name = device_name(device)
    side = run.data.resolution
    info = {
        "scale": run.scale, "weights": model or "random", "dataset": DATASET, "images": images, "resolution": side,
        "model": model_name(run, argparse.Namespace(model=model, vae=None)),
        "vae_model": model or f"{vae_name} (random weights)",
        "train_gflops_per_image": count_training_flops(run) / 1e9,
        "sample_gflops_per_image": (SAMPLE_STEPS * 2 * count_forward_flops(run) + decode_flops(vae, run)) / 1e9,
        "encode_gflops_per_image": count_module_flops(lambda: diffusers.AutoencoderKL.from_config(vae.config),
                                                      (1, 3, side, side),
                                                      lambda module, x: module.encode(x).latent_dist.mean) / 1e9,
        "sample_steps": SAMPLE_STEPS, "guidance": GUIDANCE, "device": name,
        "peak_tflops": {precision: (peak / 1e12 if (peak := peak_flops(name, precision)) else None)
                        for precision in ("fp32", "tf32", "bf16")},
        "torch": torch.__version__, "diffusers": diffusers.__version__, "git_commit": git_commit()}
    write_json(work / "inputs.json", info)
    log.info("wrote %d synthetic %d-px images%s to %s", images, side,
             "" if model else ", a random DiT and VAE", work)
    return info
