"""Resumable training-state checkpoints: model, EMA, optimiser, step, RNG and the resolved config, with no pickle.

Layout: `OUT/checkpoints/checkpoint-0001000/{model,ema,rng}.safetensors, optimizer.pt, state.json`. Each folder
is written under a temporary name and renamed when complete, and renamed to a hidden name before it is deleted, so
a killed job never leaves a half checkpoint; the hidden leftovers of a killed job go at the next checkpoint.
One training job per output folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import safetensors.torch
import torch

from tunebench.config import RunConfig, flat_keys, to_dict
from tunebench.io import FileFormatError, atomic_dir, read_json, torch_load

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d{7})$")
log = logging.getLogger("tunebench.checkpoint")
# Keys that may change between a checkpoint and its resumption without changing what is computed (the sampling
# protocol never touches training; checkpointing and compiling change the speed, not the updates; a latent cache
# gives the latents encoding would, up to float rounding).
RESUMABLE_CHANGES = {"train.steps", "train.log_every", "train.log_with", "train.checkpoint_every",
                     "train.checkpoints_keep", "train.gradient_checkpointing", "train.compile", "data.latents"}
RESUMABLE_SECTIONS = ("sample.",)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or from a different configuration."""


def checkpoint_dir(out_dir: str | Path, step: int) -> Path:
    """Folder of the checkpoint taken after `step` optimiser steps."""
    return Path(out_dir) / "checkpoints" / f"checkpoint-{step:07d}"


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints under `out_dir`, oldest first."""
    root = Path(out_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if CHECKPOINT_PATTERN.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: p.name)


def save_checkpoint(out_dir, step: int, model, ema, optimizer, run: RunConfig, keep: int,
                    inputs: dict[str, str] | None = None, train_seconds: float | None = None) -> Path:
    """Write a complete checkpoint atomically, then delete all but the newest `keep`.

    `inputs` maps each input file the run trains from (pre-trained model, retention set) to its fingerprint;
    `train_seconds` is the wall time of training up to `step`, summed over every invocation that resumed the run
    (None: unknown, a run resumed from a checkpoint that did not record it).
    """
    target = checkpoint_dir(out_dir, step)
    with atomic_dir(target) as tmp:
        safetensors.torch.save_model(model, str(tmp / "model.safetensors"))
        safetensors.torch.save_model(ema, str(tmp / "ema.safetensors"))
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        rng = {"torch_cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
        safetensors.torch.save_file(rng, str(tmp / "rng.safetensors"))
        (tmp / "state.json").write_text(
            json.dumps({"step": step, "run_config": to_dict(run), "inputs": inputs or {},
                        "train_seconds": train_seconds}, indent=2, sort_keys=True))
    remove_leftovers(out_dir)
    for old in list_checkpoints(out_dir)[:-keep]:
        hidden = old.with_name(f".{old.name}.deleted")
        os.replace(old, hidden)  # a kill during the deletion then leaves no folder that looks like a checkpoint
        shutil.rmtree(hidden, ignore_errors=True)
    return target


def remove_leftovers(out_dir: str | Path) -> None:
    """Delete the hidden half-written or half-deleted checkpoint folders a killed job left (as big as checkpoints)."""
    for leftover in (Path(out_dir) / "checkpoints").glob(".checkpoint-*"):
        log.info("removing %s, left by an interrupted job", leftover)
        shutil.rmtree(leftover, ignore_errors=True)


def check_compatible(saved: dict, run: RunConfig, where: Path) -> None:
    """Refuse to resume from a checkpoint whose config differs in anything but the step budget and logging."""
    old, new = flat_keys(saved), flat_keys(to_dict(run))
    # A key the checkpoint lacks was added to the code later; its default reproduces what the old run did.
    defaults = flat_keys(to_dict(type(run)()))
    old.update({k: defaults[k] for k in new.keys() - old.keys() if k in defaults})
    # With a linear learning-rate decay the step budget fixes the schedule, so it cannot change either.
    resumable = RESUMABLE_CHANGES - ({"train.steps"} if run.train.lr_schedule == "linear" else set())
    differing = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in resumable
                       and not k.startswith(RESUMABLE_SECTIONS))
    if differing:
        details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differing[:6])
        raise CheckpointError(
            f"checkpoint {where} was made with a different config ({details}). Resume with the same config, "
            f"start a new run in another output folder, or delete {where.parent} to start this run over (what a "
            "Snakemake rerun needs after the settings or the pinned model it trains on changed).")


def check_same_inputs(saved: dict | None, inputs: dict[str, str] | None, where: Path) -> None:
    """Refuse to resume a run whose input files (pre-trained model, retention set) changed since the checkpoint."""
    if saved is None:  # checkpoints written before inputs were recorded
        log.warning("checkpoint %s does not record its input files; resuming without checking them", where)
        return
    inputs = inputs or {}
    changed = sorted(k for k in saved.keys() | inputs.keys() if saved.get(k) != inputs.get(k))
    if changed:
        details = ", ".join(f"{k}: {str(saved.get(k))[:12]} -> {str(inputs.get(k))[:12]}" for k in changed)
        raise CheckpointError(
            f"checkpoint {where} was trained from other input files ({details}). Its weights would be stale: delete "
            f"{where.parent} to start over, or use another output folder.")


def _read(file: Path, load):
    """`load(file)`, with a missing, truncated or unsafe file raised as a CheckpointError naming it and the way out."""
    try:
        return load(file)
    except (OSError, FileFormatError, safetensors.SafetensorError) as err:
        reason = str(err) if str(file) in str(err) else f"{file}: {err}"
        raise CheckpointError(f"checkpoint {file.parent} cannot be resumed: {reason}. Resume from an older checkpoint "
                              f"(--resume {file.parent.parent}/checkpoint-NNNNNNN) or delete {file.parent}") from err


def check_checkpoint(path: str | Path, run: RunConfig, inputs: dict[str, str] | None = None) -> dict:
    """Read `path`'s state.json, refuse a checkpoint of another config or other input files, and return the state."""
    path = Path(path)
    if not (path / "state.json").is_file():
        raise CheckpointError(f"{path} is not a complete checkpoint (no state.json); pick another checkpoint-* folder")
    state = read_json(path / "state.json")
    check_compatible(state["run_config"], run, path)
    check_same_inputs(state.get("inputs"), inputs, path)
    return state


def load_weights(path: str | Path, module, name: str) -> None:
    """Load checkpoint `path`'s `name` weights ('model' or 'ema') into `module` in place, refusing a file whose
    tensors do not match the module's."""
    file = Path(path) / f"{name}.safetensors"
    missing, unexpected = _read(file, lambda f: safetensors.torch.load_model(module, str(f), strict=False))
    if missing or unexpected:
        # safetensors returns the names as sets, which cannot be sliced
        raise CheckpointError(f"{file} does not match the model (missing {sorted(missing)[:3]}, unexpected "
                              f"{sorted(unexpected)[:3]})")


def load_checkpoint(path: str | Path, model, ema, optimizer, run: RunConfig,
                    inputs: dict[str, str] | None = None) -> tuple[int, float | None]:
    """Restore model, EMA, optimiser and RNG from `path` (in place) and return (the step to continue from, the wall
    seconds of training up to it; None when the checkpoint predates that record)."""
    path = Path(path)
    state = check_checkpoint(path, run, inputs)
    load_weights(path, model, "model")
    load_weights(path, ema, "ema")
    optimizer.load_state_dict(_read(path / "optimizer.pt", torch_load))
    rng = _read(path / "rng.safetensors", lambda file: safetensors.torch.load_file(str(file)))
    torch.set_rng_state(rng["torch_cpu"])
    if torch.cuda.is_available():
        states = [rng[k] for k in sorted(rng) if k.startswith("cuda_")]
        if states:
            torch.cuda.set_rng_state_all(states)
    return int(state["step"]), state.get("train_seconds")
