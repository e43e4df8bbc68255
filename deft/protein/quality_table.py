"""The prior-quality table: one row per evaluated prior (its training step) and the training data's reference row
(step "data"), with the settings the figures were computed under, read back typed and rewritten atomically.

Columns: step; samples and length (traces scored, residues each); sampler, sample_steps, eta and noise_scale (the
motif table's unconditional sampler; blank in the data row); the figures of `deft.protein.quality`; weights_sha256
(`tunebench.models.tensors_sha256` of the evaluated prior, the same for a checkpoint and its exported folder).
"""

from __future__ import annotations

import csv
from pathlib import Path

from deft.protein.config import ProteinConfig
from deft.protein.quality import metric_columns
from tunebench.config import ConfigError
from tunebench.io import write_csv

DATA_STEP = "data"
SAMPLER = ("sampler", "sample_steps", "eta", "noise_scale")
SETTINGS = ("samples", "length", *SAMPLER)
COLUMNS = ("step", *SETTINGS, *metric_columns(), "weights_sha256")
_INTEGERS = {"samples", "length", "sample_steps"}
_TEXT = {"sampler", "weights_sha256"}


def sampler_settings(run: ProteinConfig) -> dict:
    """The sampler columns: the DDIM settings of `run.sample`, which every motif-table method (unconditional
    included) samples with."""
    return {"sampler": "ddim", "sample_steps": run.sample.steps, "eta": run.sample.eta,
            "noise_scale": run.sample.noise_scale}


def row_settings(step, samples: int, length: int, run: ProteinConfig) -> dict:
    """The settings columns of the row of `step` (the data row is not sampled: its sampler columns stay blank)."""
    sampler = dict.fromkeys(SAMPLER) if step == DATA_STEP else sampler_settings(run)
    return {"samples": samples, "length": length, **sampler}


def _value(column: str, text: str):
    """A CSV cell as the type its column holds (None when blank)."""
    if text == "":
        return None
    if column == "step":
        return int(text) if text.isdigit() else text  # DATA_STEP, or 'model' for a prior without a recorded step
    if column in _TEXT:
        return text
    return int(text) if column in _INTEGERS else float(text)


def read_table(path: str | Path) -> list[dict]:
    """The rows of a table written by `write_table` (none when the file does not exist yet)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"{path} lacks the columns {missing}: it was not written by this version of "
                              "deft.protein.prior_quality; delete it to recompute every row")
        try:
            return [{c: _value(c, row[c]) for c in COLUMNS} for row in reader]
        except ValueError as err:
            raise ConfigError(f"{path} has a malformed value ({err}); delete it to recompute every row") from None


def check_settings(path: str | Path, rows: list[dict], expected: dict) -> None:
    """Refuse rows computed under other settings than `expected` (step → settings): mixing them would make the
    curve compare unlike with unlike."""
    for row in rows:
        wanted = expected.get(row["step"])
        if wanted is None:  # a checkpoint the run has since deleted: its row still belongs to the curve
            continue
        differing = [f"{key} = {row[key]!r} (now {value!r})" for key, value in wanted.items() if row[key] != value]
        if differing:
            raise ConfigError(f"{path}: the row of step {row['step']} was computed with {', '.join(differing)}; "
                              "pass the same --scale/--samples/--length, or delete the file to recompute")


def ordered(rows: list[dict]) -> list[dict]:
    """The data row first, then the priors by step (rows of a non-numeric step, such as 'model', last)."""
    return sorted(rows, key=lambda r: (r["step"] != DATA_STEP, not isinstance(r["step"], int),
                                       r["step"] if isinstance(r["step"], int) else 0, str(r["step"])))


def write_table(path: str | Path, rows: list[dict]) -> None:
    """Write the rows in `ordered` order, atomically (a killed job leaves the previous complete table)."""
    write_csv(path, COLUMNS, ordered(rows))
