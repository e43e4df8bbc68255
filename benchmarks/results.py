"""The tidy results table: one CSV row per (experiment, method, dataset, metric, seed) with its protocol and provenance.

Every metric CLI appends rows with `append_rows`; tables and figures read them with `read_results`. A row whose key
already exists replaces the old one, so a resumed or re-run job never duplicates a number. Rows stay sorted by key
so that result files diff cleanly. The meaning of each column is in docs/results.md.
"""

from __future__ import annotations

import csv
import fcntl
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from tunebench.config import ConfigError, rehearsal_file
from tunebench.io import atomic_path

RESULT_COLUMNS = ("experiment", "method", "dataset", "metric", "value", "ci_low", "ci_high", "seed", "scale", "model",
                  "steps", "sampler", "guidance", "n_samples", "extractor", "reference", "git_commit", "config_hash",
                  "note")
KEY_COLUMNS = ("experiment", "method", "dataset", "metric", "seed")
INT_COLUMNS = ("seed", "steps", "n_samples")
FLOAT_COLUMNS = ("value", "ci_low", "ci_high", "guidance")
# The 95% interval of `value`; a row without one may leave both out (written empty), and `note` says how it was made.
INTERVAL_COLUMNS = ("ci_low", "ci_high")
# The header before the interval columns: such files are read with empty intervals and rewritten in the schema.
LEGACY_COLUMNS = tuple(column for column in RESULT_COLUMNS if column not in INTERVAL_COLUMNS)
# A rehearsal's rows (random stand-in weights, tunebench.config.REHEARSAL_ENV) begin their model and extractor ids
# with this, so that no table or reader can take them for measurements.
REHEARSAL_PREFIX = "rehearsal-"
REHEARSAL_COLUMNS = ("model", "extractor")


class ResultsError(ConfigError):
    """A results row or file does not follow the schema; the message names the file, row and columns."""


#################################################################################
#                             Row Validation                                    #
#################################################################################


def _is_empty(value) -> bool:
    """None, NaN, pandas NA and "" all mean "no value"."""
    return value == "" if isinstance(value, str) else pd.api.types.is_scalar(value) and bool(pd.isna(value))


def _as_text(column: str, value, where: str) -> str:
    """Validate one cell and return its canonical CSV text (so a value read back and written again is unchanged)."""
    try:
        if _is_empty(value) or (column in FLOAT_COLUMNS and math.isnan(float(value))):
            text = ""
        elif column in INT_COLUMNS:
            number = float(value)
            if isinstance(value, bool) or not number.is_integer():
                raise ValueError
            text = str(int(number))
        elif column in FLOAT_COLUMNS:
            text = repr(float(value))  # repr round-trips exactly; +inf is written as "inf"
        else:
            text = str(value)
    except (TypeError, ValueError):
        kind = "an integer" if column in INT_COLUMNS else "a number"
        raise ResultsError(f"{where}: column {column!r} must be {kind} or empty, got {value!r}") from None
    if not text and column in KEY_COLUMNS:
        raise ResultsError(f"{where}: key column {column!r} must not be empty")
    return text


def _check_columns(columns: Iterable[str], where: str, fix: str = "") -> None:
    """Raise naming the missing and unknown columns (and then `fix`) when `columns` is not exactly the schema (the
    interval columns may be left out)."""
    present = list(columns)
    missing = [c for c in RESULT_COLUMNS if c not in present and c not in INTERVAL_COLUMNS]
    unknown = [c for c in present if c not in RESULT_COLUMNS]
    if missing or unknown:
        raise ResultsError(f"{where}: missing columns {missing}, unknown columns {unknown} "
                           f"(the schema is benchmarks.results.RESULT_COLUMNS, see docs/results.md){fix}")


def canonical_row(row: dict, where: str) -> dict[str, str]:
    """Validate one row against the schema and return it as canonical CSV text, columns in schema order."""
    _check_columns(row, where)
    text = {column: _as_text(column, row.get(column), where) for column in RESULT_COLUMNS}
    if text["value"] == "" and not text["note"].strip():
        raise ResultsError(f"{where}: 'value' is empty (a skipped metric), so 'note' must say why")
    low, high = (text[column] for column in INTERVAL_COLUMNS)
    if bool(low) != bool(high):
        raise ResultsError(f"{where}: an interval needs both 'ci_low' and 'ci_high', got {low!r} and {high!r}")
    if low and float(low) > float(high):
        raise ResultsError(f"{where}: 'ci_low' {low} is above 'ci_high' {high}")
    return text


def _sort_key(row: dict[str, str]) -> tuple:
    """Key columns in order, the seed compared as a number."""
    return tuple(int(row[c]) if c == "seed" else row[c] for c in KEY_COLUMNS)


#################################################################################
#                               Reading and Writing                             #
#################################################################################


def _read_text_rows(path: Path) -> list[dict[str, str]]:
    """Read a results CSV as canonical text rows after checking its header (the exact schema, in order)."""
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist; check the path, or run the metric job that "
                                "writes it")
    fix = "; the file was left unchanged: convert it to the schema or write new results to another file"
    try:
        # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name.
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            if not header:
                raise ResultsError(f"{path} is empty (no header row); delete it, or restore it from a good run")
            if tuple(header) not in (RESULT_COLUMNS, LEGACY_COLUMNS):
                _check_columns(header, f"{path} has a different header", fix)
                raise ResultsError(f"{path} has the schema's columns in a different order: {header}{fix}")
            rows, lines = [], {}
            for line, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise ResultsError(f"{path} line {line}: {len(cells)} cells, expected {len(header)}")
                row = canonical_row(dict(zip(header, cells)), f"{path} line {line}")
                # Two rows of one key would make a table's mean count a number twice; append_rows never writes them.
                first = lines.setdefault(_sort_key(row), line)
                if first != line:
                    raise ResultsError(f"{path} lines {first} and {line} have the same key "
                                       f"{dict(zip(KEY_COLUMNS, _sort_key(row)))}; delete one of them")
                rows.append(row)
    except UnicodeDecodeError as err:
        raise ResultsError(f"{path} is not a UTF-8 text CSV ({err}); restore it from a good run") from None
    return rows


def _write_text_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows sorted by key, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(rows, key=_sort_key))


def append_rows(csv_path: str | Path, rows: list[dict]) -> None:
    """Add rows to a results CSV (created if new); a row whose key exists replaces the old row.

    Every row must have exactly the columns in RESULT_COLUMNS (the interval columns may be left out). A file on disk
    with another header is an error and is left untouched; one with the header before the interval columns is
    rewritten in the schema. A lock file beside the CSV serialises concurrent writers, so no job's rows are lost.
    """
    path = Path(csv_path)
    new_rows = _checked_rows(path, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        merged = {_sort_key(row): row for row in (_read_text_rows(path) if path.exists() else [])}
        merged.update((_sort_key(row), row) for row in new_rows)
        _write_text_rows(path, list(merged.values()))


def write_rows(csv_path: str | Path, rows: list[dict]) -> None:
    """Write rows as the whole results CSV (made or replaced, atomically), checked as `append_rows` checks them: for
    a summary computed from other files, which must not keep the rows of an earlier run."""
    path = Path(csv_path)
    new_rows = _checked_rows(path, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text_rows(path, new_rows)


def _checked_rows(path: Path, rows: list[dict]) -> list[dict[str, str]]:
    """Rows for `path` as canonical text, each checked against the schema; two rows with one key are an error."""
    new_rows = [canonical_row(row, f"row {i} for {path}") for i, row in enumerate(rows)]
    if rehearsal_file():
        new_rows = [rehearsal_row(row) for row in new_rows]
    keys = [_sort_key(row) for row in new_rows]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ResultsError(f"rows for {path} repeat the key {dict(zip(KEY_COLUMNS, repeated[0]))}")
    return new_rows


def rehearsal_row(row: dict[str, str]) -> dict[str, str]:
    """The row with REHEARSAL_PREFIX before its model and extractor ids (once: a merged row keeps its prefix)."""
    marked = {column: row[column] if row[column].startswith(REHEARSAL_PREFIX) else REHEARSAL_PREFIX + row[column]
              for column in REHEARSAL_COLUMNS}
    return {**row, **marked}


def is_rehearsal(rows: pd.DataFrame) -> pd.Series:
    """Which rows a rehearsal wrote (their model id carries REHEARSAL_PREFIX)."""
    return rows["model"].astype(str).str.startswith(REHEARSAL_PREFIX)


def check_one_kind(rows: pd.DataFrame, where: str) -> None:
    """Refuse rows that mix a rehearsal's with real measurements: one table must not show both."""
    rehearsal = is_rehearsal(rows)
    if rehearsal.any() and not rehearsal.all():
        real = rows[~rehearsal].iloc[0]
        raise ResultsError(f"{where}: {int(rehearsal.sum())} rows come from a rehearsal (model id '{REHEARSAL_PREFIX}"
                           f"...', random stand-in weights) and {int((~rehearsal).sum())} from real runs (e.g. "
                           f"{real['experiment']}/{real['method']}/{real['dataset']}, model {real['model']!r}); "
                           "render them from separate results files")


def read_results(*csv_paths: str | Path) -> pd.DataFrame:
    """Read and concatenate results CSVs (headers checked; one key in two files is an error).

    Types: `value`, `ci_low`, `ci_high` and `guidance` are float (NaN when empty), `seed` int, `steps` and
    `n_samples` nullable Int64, the other columns str ("" when empty).
    """
    if not csv_paths:
        raise ResultsError("read_results needs at least one results CSV")
    frame = pd.DataFrame(_union_rows(csv_paths), columns=list(RESULT_COLUMNS), dtype=object)
    for column in RESULT_COLUMNS:
        if column in FLOAT_COLUMNS:
            frame[column] = pd.array([float(t) if t else float("nan") for t in frame[column]], dtype="float64")
        elif column in INT_COLUMNS:
            frame[column] = pd.array([int(t) if t else None for t in frame[column]],
                                     dtype="int64" if column == "seed" else "Int64")
        else:
            frame[column] = frame[column].astype(str)
    return frame


def _union_rows(csv_paths, experiment: str | None = None) -> list[dict[str, str]]:
    """The rows of several results CSVs, each file checked, with `experiment` in every row when given; one key in two
    files is an error."""
    rows, source = [], {}
    for path in map(Path, csv_paths):
        for row in _read_text_rows(path):
            if experiment:
                row["experiment"] = experiment
            key = _sort_key(row)
            if key in source:
                raise ResultsError(f"{dict(zip(KEY_COLUMNS, key))} appears in both {source[key]} and {path}")
            source[key] = path
            rows.append(row)
    return rows


def merge(out: str | Path, csv_paths: list[str | Path], experiment: str | None = None) -> int:
    """Write the union of several results CSVs (each checked; a key in two files is an error) to `out`; return rows.

    `experiment` relabels every row: one experiment's file assembled from rows measured for others (DEFT's main rows
    beside the amortised model's), so that its table is named after it.
    """
    rows = _union_rows(csv_paths, experiment)
    _write_text_rows(Path(out), rows)
    return len(rows)
