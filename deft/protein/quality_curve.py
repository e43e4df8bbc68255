"""The prior-quality curve: the priors of a training run's kept checkpoints (or one exported prior) sampled
unconditionally with the motif table's sampler, scored by `deft.protein.quality`, beside the training crops' row, in a
table (`deft.protein.quality_table`) that is rewritten after every row and resumed by step.

The motif table samples the exported `OUT/model` of `python -m deft.protein.train prior`, which holds the trained
(not the EMA) weights; a checkpoint's counterpart of those is `model.safetensors`, so that is what each curve row
evaluates, and the last checkpoint's row has the exported folder's weights_sha256.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from deft.protein.config import PriorRun, ProteinConfig
from deft.protein.diffusion import CentredNoise, protein_schedule
from deft.protein.models import build_prior, length_unit, load_prior
from deft.protein.quality import quality_summary, training_crops
from deft.protein.quality_table import DATA_STEP, check_settings, read_table, row_settings, write_table
from deft.protein.samplers import sample_motif
from deft.protein.structures import Chain
from tunebench.checkpoint import CHECKPOINT_PATTERN, CheckpointError, list_checkpoints, load_weights
from tunebench.config import ConfigError, from_dict
from tunebench.io import read_json
from tunebench.models import read_sidecar, tensors_sha256

log = logging.getLogger("deft.protein.prior_quality")  # the CLI's name, so that log lines read as its own
EXPORTED_WEIGHTS = "model"  # the checkpoint file `deft.protein.train` exports as OUT/model (see the docstring)

PriorSource = tuple[object, Callable[[], torch.nn.Module]]  # (step, loader of the prior)


def checkpoint_prior(path: Path) -> torch.nn.Module:
    """The prior of one training checkpoint: the network its run_config builds, with its trained weights."""
    state = read_json(path / "state.json")
    if "run_config" not in state:
        raise CheckpointError(f"{path / 'state.json'} has no 'run_config'; it was not written by tunebench training "
                              "— pass the --out folder of python -m deft.protein.train prior")
    prior = build_prior(from_dict(state["run_config"], PriorRun))
    load_weights(path, prior, EXPORTED_WEIGHTS)
    return prior.eval().requires_grad_(False)


def run_sources(run_dir: Path) -> list[PriorSource]:
    """(step, loader) of every kept checkpoint of a prior's training run, oldest first."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir / 'checkpoints'} holds no complete checkpoint-NNNNNNN folder; pass the --out "
                              "folder of python -m deft.protein.train prior, or --model for an exported prior")
    return [(int(CHECKPOINT_PATTERN.match(path.name).group(1)), partial(checkpoint_prior, path)) for path in found]


def model_source(folder: Path) -> PriorSource:
    """(step, loader) of an exported prior: the step is the training steps its sidecar records, else 'model'."""
    return read_sidecar(folder).get("steps", "model"), partial(load_prior, folder)


def check_units(prior: torch.nn.Module, run: ProteinConfig, where: str) -> None:
    """Refuse a prior trained in other coordinate units than the --scale config samples in (its Å would be off)."""
    trained = getattr(prior.config, "length_unit", None)
    if trained is not None and abs(trained - length_unit(run)) > 1e-9:
        raise ConfigError(f"{where} was trained with {trained / 10:g} model units per Å but config key "
                          f"'data.coord_scale' = {run.data.coord_scale:g} at scale {run.scale}; pass the scale the "
                          f"prior was trained at, or --set data.coord_scale={trained / 10:g}")


def unconditional_samples(prior: torch.nn.Module, run: ProteinConfig, count: int, length: int,
                          progress: bool = False) -> np.ndarray:
    """`count` unconditional samples of `length` residues (count×length×3, Å) with the motif table's sampler
    (`samplers.sample_motif` 'unconditional', `run.sample`); sample k uses seed k alone, so the first k samples of any
    count are the same."""
    schedule = protein_schedule(run.diffusion)
    batches = []
    with tqdm(total=count, desc="samples", unit="sample", disable=not progress, leave=False) as bar:
        for start in range(0, count, run.sample.batch_size):
            seeds = list(range(start, min(count, start + run.sample.batch_size)))
            # no motif: the unconditional sampler ignores mask and motif
            x, _ = sample_motif("unconditional", prior, schedule, run, torch.zeros(len(seeds), length),
                                torch.zeros(len(seeds), length, 3), CentredNoise(seeds))
            batches.append(x / run.data.coord_scale)
            bar.update(len(seeds))
    return torch.cat(batches).numpy().astype(np.float64)


def prior_row(step, prior: torch.nn.Module, run: ProteinConfig, count: int, length: int, progress: bool) -> dict:
    """The table row of one prior."""
    samples = unconditional_samples(prior, run, count, length, progress)
    return {"step": step, **row_settings(step, count, length, run), **quality_summary(samples, run.success),
            "weights_sha256": tensors_sha256(prior)}


def data_row(chains: list[Chain], run: ProteinConfig, count: int, length: int, source: str) -> dict:
    """The reference row: `count` crops of the training chains, scored like the samples."""
    crops = training_crops(chains, count, length, source)
    return {"step": DATA_STEP, **row_settings(DATA_STEP, count, length, run), **quality_summary(crops, run.success),
            "weights_sha256": None}


def update_curve(table: Path, sources: list[PriorSource], chains: list[Chain], data_source: str, run: ProteinConfig,
                 count: int, length: int, progress: bool = False) -> list[dict]:
    """Add the data row and every source's row that `table` lacks, rewriting it after each; returns all rows.

    Rows already in the table are kept as they are (after checking their settings and weights), so an interrupted
    or repeated call computes only what is missing.
    """
    rows = read_table(table)
    expected = {step: row_settings(step, count, length, run) for step in [DATA_STEP, *(s for s, _ in sources)]}
    check_settings(table, rows, expected)
    done = {row["step"]: row for row in rows}
    if DATA_STEP not in done:
        rows.append(data_row(chains, run, count, length, data_source))
        write_table(table, rows)
    for step, load in tqdm(sources, desc="priors", unit="prior", disable=not progress):
        prior = load()
        if step in done:  # loading is cheap next to sampling: check that the row is of these weights
            if done[step]["weights_sha256"] != tensors_sha256(prior):
                raise ConfigError(f"{table}: the row of step {step} was computed from other weights than the prior's "
                                  "now (retrained?); delete the file to recompute")
            continue
        check_units(prior, run, f"the prior of step {step}")
        rows.append(prior_row(step, prior, run, count, length, progress))
        write_table(table, rows)
        log.info("step %s: valid bonds %.3f, clash-free %.3f", step, rows[-1]["valid_bonds"], rows[-1]["clash_free"])
    return rows
