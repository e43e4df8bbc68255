"""The prior-quality curve: the priors of a training run's kept checkpoints (or one exported prior) sampled
unconditionally with the motif table's sampler, scored by `deft.protein.quality`, beside the training crops' row
(step "data"), in a `benchmarks.quality_curve` table that is rewritten after every row and resumed by step.

Columns: step; samples and length (traces scored, residues each); sampler, sample_steps, eta and noise_scale (the
motif table's unconditional sampler; blank in the data row); the figures of `deft.protein.quality`; weights_sha256
(`tunebench.models.tensors_sha256` of the evaluated prior, the same for a checkpoint and its exported folder).

The motif table samples the exported `OUT/model` of `python -m deft.protein.train prior`, which holds the trained
(not the EMA) weights; a checkpoint's counterpart of those is `model.safetensors`, so that is what each curve row
evaluates, and the last checkpoint's row has the exported folder's weights_sha256.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.quality_curve import Checkpoint, ReferenceRow, measure_curve, read_curve
from deft.protein.config import PriorRun, ProteinConfig
from deft.protein.diffusion import CentredNoise, protein_schedule
from deft.protein.models import build_prior, length_unit, load_prior
from deft.protein.quality import DATA_STEP, metric_columns, quality_summary, training_crops
from deft.protein.samplers import sample_motif
from deft.protein.structures import Chain
from tunebench.checkpoint import CHECKPOINT_PATTERN, CheckpointError, list_checkpoints, load_weights
from tunebench.config import ConfigError, from_dict
from tunebench.io import read_json
from tunebench.models import read_sidecar

EXPORTED_WEIGHTS = "model"  # the checkpoint file `deft.protein.train` exports as OUT/model (see the docstring)
COLUMNS = ("step", "samples", "length", "sampler", "sample_steps", "eta", "noise_scale", *metric_columns(),
           "weights_sha256")
NUMBERS = {"samples": int, "length": int, "sample_steps": int, "eta": float, "noise_scale": float,
           **dict.fromkeys(metric_columns(), float)}


def checkpoint_prior(path: Path) -> torch.nn.Module:
    """The prior of one training checkpoint: the network its run_config builds, with its trained weights."""
    state = read_json(path / "state.json")
    if "run_config" not in state:
        raise CheckpointError(f"{path / 'state.json'} has no 'run_config'; it was not written by tunebench training "
                              "— pass the --out folder of python -m deft.protein.train prior")
    prior = build_prior(from_dict(state["run_config"], PriorRun))
    load_weights(path, prior, EXPORTED_WEIGHTS)
    return prior.eval().requires_grad_(False)


def run_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Every kept checkpoint of a prior's training run, oldest first."""
    found = list_checkpoints(run_dir)
    if not found:
        raise CheckpointError(f"{run_dir / 'checkpoints'} holds no complete checkpoint-NNNNNNN folder; pass the --out "
                              "folder of python -m deft.protein.train prior, or --model for an exported prior")
    return [Checkpoint(int(CHECKPOINT_PATTERN.match(path.name).group(1)), path, partial(checkpoint_prior, path))
            for path in found]


def model_checkpoint(folder: Path) -> Checkpoint:
    """An exported prior, at the training steps its sidecar records (else the step 'model')."""
    return Checkpoint(read_sidecar(folder).get("steps", "model"), folder, partial(load_prior, folder))


def check_units(prior: torch.nn.Module, run: ProteinConfig, where: str) -> None:
    """Refuse a prior trained in other coordinate units than the --scale config samples in (its Å would be off)."""
    trained = getattr(prior.config, "length_unit", None)
    if trained is not None and abs(trained - length_unit(run)) > 1e-9:
        raise ConfigError(f"{where} was trained with {trained / 10:g} model units per Å but config key "
                          f"'data.coord_scale' = {run.data.coord_scale:g} at scale {run.scale}; pass the scale the "
                          f"prior was trained at, or --set data.coord_scale={trained / 10:g}")


def unconditional_samples(prior: torch.nn.Module, run: ProteinConfig, count: int, length: int,
                          progress: bool = False, on_step=None) -> np.ndarray:
    """`count` unconditional samples of `length` residues (count×length×3, Å) with the motif table's sampler
    (`samplers.sample_motif` 'unconditional', `run.sample`); sample k uses seed k alone, so the first k samples of any
    count are the same. `on_step(t, x̂0)` goes to the sampler, called per batch of `sample.batch_size` seeds in
    order."""
    schedule = protein_schedule(run.diffusion)
    batches = []
    with tqdm(total=count, desc="samples", unit="sample", disable=not progress, leave=False) as bar:
        for start in range(0, count, run.sample.batch_size):
            seeds = list(range(start, min(count, start + run.sample.batch_size)))
            # no motif: the unconditional sampler ignores mask and motif
            x, _ = sample_motif("unconditional", prior, schedule, run, torch.zeros(len(seeds), length),
                                torch.zeros(len(seeds), length, 3), CentredNoise(seeds), on_step=on_step)
            batches.append(x / run.data.coord_scale)
            bar.update(len(seeds))
    return torch.cat(batches).numpy().astype(np.float64)


def read_table(path: str | Path) -> list[dict]:
    """The rows of a prior-quality table (none when the file does not exist yet)."""
    return read_curve(path, COLUMNS, NUMBERS)


def update_curve(table: Path, checkpoints: list[Checkpoint], chains: list[Chain], data_source: str,
                 run: ProteinConfig, count: int, length: int, progress: bool = False) -> list[dict]:
    """Add the data row (`count` crops of the training chains read from `data_source`, scored like the samples) and
    every checkpoint's row that `table` lacks, rewriting it after each; returns all rows, the data row first.

    Rows already in the table are kept as they are (after checking their settings and weights), so an interrupted
    or repeated call computes only what is missing.
    """
    def prior_row(checkpoint: Checkpoint, prior: torch.nn.Module) -> dict:
        """The figures of one prior's unconditional samples."""
        check_units(prior, run, f"the prior of step {checkpoint.step}")
        return quality_summary(unconditional_samples(prior, run, count, length, progress), run.success)

    scored = {"samples": count, "length": length}
    # The motif table samples every method (unconditional included) with the DDIM settings of `run.sample`; the
    # data row is not sampled, so its sampler columns stay blank.
    spacing = run.sample.spacing
    sampler = {"sampler": "ddim" if spacing == "leading" else f"ddim-{spacing}", "sample_steps": run.sample.steps,
               "eta": run.sample.eta, "noise_scale": run.sample.noise_scale}
    data = ReferenceRow(DATA_STEP, {**scored, **dict.fromkeys(sampler)},
                        lambda: quality_summary(training_crops(chains, count, length, data_source), run.success))
    return measure_curve(checkpoints, prior_row, {**scored, **sampler}, table, COLUMNS, NUMBERS, references=[data],
                         headline=("valid_bonds", "clash_free"), progress=progress)
