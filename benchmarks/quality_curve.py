"""A quality curve over training: one row of measures per kept checkpoint of a run (and reference rows that are not
of weights, e.g. the training data's), kept in a CSV that is rewritten atomically after every row, so a killed job
loses at most the row it was computing and a new job computes only the rows still missing.

Rows made with another protocol, or on other weights than the run now holds at their step (it was trained again),
are refused, since mixing them would give a false curve. `weights_sha256` is `tunebench.models.tensors_sha256` of
the loaded module: the same for a training checkpoint and the folder exported from it, whose files differ.

Used by `benchmarks.dit_quality` (a DiT) and `deft.protein.prior_quality` (the protein prior).
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from tunebench.config import ConfigError
from tunebench.io import write_csv

log = logging.getLogger(__name__)
SHA_COLUMN = "weights_sha256"


@dataclass(frozen=True)
class Checkpoint:
    """One set of weights on the curve: the training step it was taken after (or a label, such as 'model', when
    unknown), the folder it is read from (named in errors) and a loader of the module that holds it."""

    step: int | str
    folder: Path
    load: Callable[[], Any]


@dataclass(frozen=True)
class ReferenceRow:
    """A row of the curve that is not of weights (blank weights_sha256): its step label, its protocol columns and
    the function that computes its measures, called only when the CSV lacks the row."""

    step: str
    protocol: dict
    measure: Callable[[], dict]


def _cell(column: str, text: str, numbers: Mapping[str, type]):
    """A CSV cell as the type its column holds: None when blank, the step an int when it is one."""
    if text == "":
        return None
    if column == "step":
        return int(text) if text.isdigit() else text
    return numbers.get(column, str)(text)


def read_curve(path: str | Path, columns: Sequence[str], numbers: Mapping[str, type]) -> list[dict]:
    """The rows of a curve CSV with exactly `columns` ([] when the file does not exist yet), typed by `numbers`
    (column → int or float; other columns are text)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != list(columns):
            raise ConfigError(f"{path} has the columns {reader.fieldnames}, not those of this tool's curve "
                              f"{list(columns)}; delete it to measure every row again, or pass another --out-csv")
        try:
            return [{key: _cell(key, value, numbers) for key, value in row.items()} for row in reader]
        except ValueError as err:
            raise ConfigError(f"{path} has a malformed value ({err}); delete it to measure every row again, or pass "
                              "another --out-csv") from None


def check_protocol(path: Path, rows: Sequence[dict], protocol: dict, references: Sequence[ReferenceRow]) -> None:
    """Refuse any row made with another protocol than it would be made with now (a reference row's own, else
    `protocol`), rows of checkpoints since deleted included: the curve would compare unlike with unlike."""
    expected = {reference.step: reference.protocol for reference in references}
    for row in rows:
        wanted = expected.get(row["step"], protocol)
        differing = [f"{key} {row[key]!r}, now {value!r}" for key, value in wanted.items() if row[key] != value]
        if differing:
            raise ConfigError(f"{path} holds step {row['step']} measured with another protocol "
                              f"({'; '.join(differing)}); measure with the same flags, pass another --out-csv, or "
                              "delete it to measure again from the checkpoints still there")


def _sha256(module) -> str:
    """The weights' SHA-256 (imported here: the rest of this module needs no torch)."""
    from tunebench.models import tensors_sha256

    return tensors_sha256(module)


def _ordered(rows: dict, references: Sequence[ReferenceRow]) -> list[dict]:
    """Reference rows first (in their order), then the checkpoints by step, then rows of a label step (e.g. 'model')."""
    first = [reference.step for reference in references]

    def key(step):
        """Sort key of a step."""
        if step in first:
            return 0, first.index(step), ""
        return (1, step, "") if isinstance(step, int) else (2, 0, str(step))

    return [rows[step] for step in sorted(rows, key=key)]


def measure_curve(checkpoints: Sequence[Checkpoint], measure: Callable[[Checkpoint, Any], dict], protocol: dict,
                  out_csv: str | Path, columns: Sequence[str], numbers: Mapping[str, type],
                  references: Sequence[ReferenceRow] = (), headline: Sequence[str] = (),
                  progress: bool = True) -> list[dict]:
    """Add to `out_csv` every reference row and every checkpoint's row it lacks, rewriting it after each, and return
    all its rows (those of checkpoints since deleted included) in `_ordered` order.

    A checkpoint's row is {"step", **measure(checkpoint, module), **protocol, "weights_sha256"}, written in the
    order of `columns` and read back typed by `numbers` (see `read_curve`); `headline` names the measures logged
    for each new row. Before anything is computed, every row already there is checked: its protocol
    (`check_protocol`) and, for a checkpoint still held, its weights (each such checkpoint is loaded and hashed:
    cheap next to measuring).
    """
    out_csv = Path(out_csv)
    rows = {row["step"]: row for row in read_curve(out_csv, columns, numbers)}
    check_protocol(out_csv, list(rows.values()), protocol, references)
    for item in checkpoints:
        if item.step in rows:
            old, new = rows[item.step][SHA_COLUMN], _sha256(item.load())
            if old != new:
                raise ConfigError(f"{out_csv} has step {item.step} measured on weights {str(old)[:8]}…, other weights "
                                  f"than {item.folder} holds now ({new[:8]}…: the run was trained again); delete "
                                  f"{out_csv} or pass another --out-csv")
            log.info("step %s: already in %s, skipped", item.step, out_csv)

    def add(row: dict, started: float) -> None:
        """Add a measured row, rewrite the CSV and log the row's headline."""
        rows[row["step"]] = row
        write_csv(out_csv, columns, _ordered(rows, references))
        shown = ", ".join(f"{name} {row[name]:.4g}" for name in headline)
        log.info("step %s: %s (%.1f s)", row["step"], shown or "measured", time.perf_counter() - started)

    for reference in references:
        if reference.step not in rows:
            started = time.perf_counter()
            add({"step": reference.step, **reference.measure(), **reference.protocol, SHA_COLUMN: None}, started)
    pending = [item for item in checkpoints if item.step not in rows]
    for item in tqdm(pending, desc="checkpoints", unit="checkpoint", disable=not progress):
        started = time.perf_counter()
        module = item.load()
        sha256 = _sha256(module)  # before measuring, which may move the module to another device
        add({"step": item.step, **measure(item, module), **protocol, SHA_COLUMN: sha256}, started)
    return _ordered(rows, references)
