"""A folder of samples of an exported DiT: one PNG per seed, a `.npz` of all of them, the protocol, an optional grid.

Image i depends only on seed i (and the model and protocol). Finished PNGs are kept: a killed run started again with
the same protocol only makes the missing ones. `python -m tunebench.sample` and the Diff-Tuning retention set both
write their samples with `write_samples`.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from PIL import Image
from torchvision.utils import make_grid

from tunebench.cli import config_from_args
from tunebench.config import ConfigError, RunConfig, to_dict
from tunebench.io import (
    atomic_path,
    git_commit,
    read_json,
    remove_temporaries,
    save_npz,
    save_png,
    to_uint8,
    write_json,
)
from tunebench.models import load_dit, load_vae, null_class, read_sidecar
from tunebench.sampling import labels_for_seeds, sample_batches
from tunebench.speed import prepare_model

log = logging.getLogger("tunebench.sample")  # the CLI's name, so that log lines read as they always have


def parse_seeds(text: str) -> list[int]:
    """'0-99' → 0..99, '1,5,7' → [1, 5, 7], and mixtures like '0-3,10'."""
    seeds = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ConfigError(f"--seeds expects ranges like 0-99 or lists like 1,5,7, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must name distinct non-negative seeds")
    return seeds


def save_grid(path: Path, images: np.ndarray, nrow: int) -> None:
    """Tile uint8 N×H×W×C images into one PNG, atomically."""
    grid = make_grid(torch.from_numpy(images).permute(0, 3, 1, 2), nrow=nrow, padding=1, pad_value=255)
    with atomic_path(path) as tmp:
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(tmp, format="PNG")


def sample_config(model: str, scale: str | None = None, config_files: list[str] = (),
                  overrides: list[str] = (), cls: type[RunConfig] = RunConfig) -> tuple[RunConfig, dict]:
    """The sampling run config (a `cls`) of `model` and its sidecar: `scale` defaults to the scale the model was
    trained at (paper for a hub id), then YAML `config_files` and KEY=VALUE `overrides` apply as the CLI flags
    would."""
    sidecar = read_sidecar(model) if Path(model).is_dir() else {}
    scale = scale or sidecar.get("run_config", {}).get("scale", "paper")
    flags = argparse.Namespace(scale=scale, config=list(config_files), overrides=list(overrides))
    return config_from_args(flags, cls), sidecar


def write_samples(run: RunConfig, sidecar: dict, model_path: str, out: Path, seeds_text: str,
                  labels_mode: str = "uniform", classes: int | None = None, grid: Path | None = None,
                  vae_path: str | None = None, device: str | None = None, progress: bool = True) -> None:
    """Sample one image per seed of `seeds_text` into `out` (see the module docstring); `labels_mode` is uniform,
    cycle, null or ids like 0,3; `vae_path` defaults to the one the model was trained with, `device` to cuda if
    available."""
    seeds = parse_seeds(seeds_text)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    trained = sidecar.get("run_config", {})
    # Under `accelerate launch` each process makes every num_processes-th missing image on its own GPU; images
    # depend only on their seed, so the set is the same for any number of processes.
    state = PartialState(cpu=device == "cpu")
    device = state.device if state.num_processes > 1 else torch.device(device)
    model = prepare_model(load_dit(model_path).to(device), compile_model=run.sample.compile,
                          compile_key="sample.compile")
    vae_path = vae_path or trained.get("model", {}).get("vae") or run.model.vae
    vae = load_vae(vae_path).to(device) if vae_path else None
    null = null_class(model)
    classes = classes or len(sidecar.get("class_names", [])) or null
    labels = labels_for_seeds(seeds, labels_mode, classes, null)
    protocol = {"model": str(model_path), "model_scale": trained.get("scale"), "model_steps": sidecar.get("steps"),
                "weights": sidecar.get("weights"), "vae": vae_path, "sample": to_dict(run.sample),
                "diffusion": to_dict(run.diffusion), "labels": labels_mode, "classes": classes,
                "seeds": seeds_text, "n_samples": len(seeds)}
    protocol_path = out / "protocol.json"
    if protocol_path.is_file() and read_json(protocol_path).get("protocol") != protocol:
        raise ConfigError(f"{out} holds samples made with another protocol ({protocol_path}); "
                          "use a new --out folder or delete the old samples")
    if state.is_main_process:
        for leftover in remove_temporaries(out):
            log.info("removed %s, left half-written by an interrupted job", leftover)
        write_json(protocol_path, {"protocol": protocol, "git_commit": git_commit()})
    state.wait_for_everyone()  # no process writes an image before the leftovers are gone
    todo = [(s, y) for s, y in zip(seeds, labels) if not (out / f"{s:06d}.png").is_file()]
    log.info("%d of %d images to make (%s, %d steps, guidance %.2f)", len(todo), len(seeds), run.sample.sampler,
             run.sample.steps, run.sample.guidance_scale)
    mine = todo[state.process_index::state.num_processes]
    if mine:
        batches = sample_batches(model, run.diffusion, run.sample, [s for s, _ in mine], [y for _, y in mine],
                                 vae=vae, vae_scaling=run.model.vae_scaling, device=device,
                                 progress=progress and state.is_local_main_process)
        for batch_seeds, images in batches:
            for seed, image in zip(batch_seeds, to_uint8(images)):
                save_png(out / f"{seed:06d}.png", image)
    state.wait_for_everyone()
    if not state.is_main_process:
        return
    images = np.stack([np.array(Image.open(out / f"{s:06d}.png")) for s in seeds])
    if images.ndim == 3:
        images = images[..., None]
    save_npz(out / "samples.npz", images=images, labels=np.array(labels), seeds=np.array(seeds))
    if grid:
        nrow = classes if labels_mode == "cycle" else math.ceil(math.sqrt(len(seeds)))
        save_grid(grid, images, nrow)
    log.info("wrote %d images to %s", len(seeds), out)
