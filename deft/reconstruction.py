"""DEFT, the amortised model or a baseline on one inverse problem's test images: the operators and measurements every
method shares, the trained models' checks and the timed sampling behind `python -m deft.reconstruct`."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from deft.amortised_model import amortised_sample, load_conditional
from deft.backbone import load_backbone
from deft.baselines import configured, run_baseline, unsupported_reason
from deft.config import DeftConfig
from deft.data import test_set, to_model_range
from deft.head import HTransformHead
from deft.method_names import TRAINED
from deft.operators.tasks import build_operator
from deft.sampler import deft_sample
from tunebench.config import ConfigError
from tunebench.models import load_pretrained, read_sidecar
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule

MEASUREMENT_SEED_OFFSET = 1 << 32  # measurement noise streams never coincide with sampler noise streams


def measurements(run: DeftConfig, x0: torch.Tensor, ids: torch.Tensor):
    """The operator for test images `ids` and their measurements y (noise of image k from k and task.seed only)."""
    op = build_operator(run.task, ids.to(x0.device), x0.shape[-1], x0.shape[1])
    generators = [torch.Generator().manual_seed(MEASUREMENT_SEED_OFFSET + run.task.seed * (1 << 24) + int(k))
                  for k in ids]
    return op, op.measure(x0, generators)


def load_head(folder: str | Path) -> HTransformHead:
    """A trained head folder (written by `deft.train`), frozen for sampling."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"--head {folder} is not a head folder (no config.json); pass OUT/head of `deft.train`")
    return load_pretrained(HTransformHead, folder).eval().requires_grad_(False)


# The task settings that make what a head sees (its stack and g): sampling must use those it was trained with.
# Sidecars written before a key existed do not record it; those keys are not compared.
HEAD_TASK_KEYS = ("operator", "gradient", "phase_grad_at", "hio_tie", "noise")


def check_head(head_folder: Path, run: DeftConfig) -> None:
    """Refuse a head trained for another operator, conditioning or backbone (its sidecar records them)."""
    sidecar = read_sidecar(head_folder)
    if not sidecar:
        return
    trained = sidecar["run_config"]
    for key in HEAD_TASK_KEYS:
        if key in trained["task"] and trained["task"][key] != getattr(run.task, key):
            raise ConfigError(f"the head in {head_folder} was trained with task.{key}={trained['task'][key]!r}, "
                              f"not {getattr(run.task, key)!r}")
    if Path(trained["model"]["pretrained"]).resolve() != Path(run.model.pretrained).resolve():
        raise ConfigError(f"the head in {head_folder} was trained on the backbone {trained['model']['pretrained']}, "
                          f"not {run.model.pretrained}")


def reconstruct(run: DeftConfig, method: str, trained: Path | None, progress: bool):
    """(reconstructions in [-1, 1], truth in [-1, 1], cost statistics) for the run's test images.

    `trained` is the head folder (DEFT) or the conditional model folder (amortised)."""
    backbone = load_backbone(run.model.pretrained, chunk=run.sample.compute_chunk)
    test = test_set(run)
    schedule = Schedule.linear(run.diffusion)
    head = load_head(trained) if method == "deft" else None
    conditional = load_conditional(trained).to(backbone.device) if method == "amortised" else None
    recon, stats, seconds = [], {}, 0.0
    for start in range(0, len(test), run.sample.batch_size):
        ids = torch.arange(start, min(start + run.sample.batch_size, len(test)))
        x0 = to_model_range(test.images[ids]).to(backbone.device)
        op, y = measurements(run, x0, ids)
        reason = None if method in TRAINED else unsupported_reason(method, op)
        if reason:
            raise ConfigError(f"{method} cannot solve task '{run.task.name}': {reason}")
        noise = SampleNoise(ids.tolist(), backbone.device)
        started = time.perf_counter()
        if method == "deft":
            out, stats = deft_sample(head, backbone, schedule, run, op, y, noise, progress)
        elif method == "amortised":
            out, stats = amortised_sample(conditional, schedule, run, op, y, noise, progress)
        else:
            config = configured(method, run.task.name, run.baselines)
            out, stats = run_baseline(method, backbone, schedule, op, y, noise, config=config, progress=progress)
            stats = {**stats, "sampler": method, "method_config": dataclasses.asdict(config)}
        seconds += time.perf_counter() - started
        recon.append(out.cpu())
    truth = to_model_range(test.images)
    return torch.cat(recon), truth, {**stats, "sample_seconds": round(seconds, 2), "n_images": len(test),
                                     "comparable": getattr(op, "comparable", True)}
