"""The papers' reported numbers (`results/paper_reference.csv`): results rows at scale `paper` plus a `source` column
(URL and table or section). A number no accessible copy of a paper states is a row with an empty `value` and a note
that begins "not found", so what is missing is listed rather than guessed (docs/results.md "Paper reference")."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from benchmarks.results import RESULT_COLUMNS, ResultsError, canonical_row

PAPER_REFERENCE_COLUMNS = (*RESULT_COLUMNS, "source")
NOT_FOUND = "not found"


def read_paper_reference(path: str | Path) -> pd.DataFrame:
    """Read and check the paper-reference CSV: the results schema plus `source`, every row with a source, every
    empty value marked "not found", no key twice. `value` is float (NaN when not found)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"paper reference {path} does not exist; the repository has it at "
                                "results/paper_reference.csv")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != PAPER_REFERENCE_COLUMNS:
            raise ResultsError(f"{path}: the header must be the results columns plus 'source', in order: "
                               f"{','.join(PAPER_REFERENCE_COLUMNS)}")
        rows, keys = [], set()
        for line, row in enumerate(reader, start=2):
            where = f"{path} line {line}"
            source = row.pop("source").strip()
            text = canonical_row(row, where)
            if not source:
                raise ResultsError(f"{where}: 'source' is empty; name the paper's URL and its table or section")
            if not text["value"] and not text["note"].startswith(NOT_FOUND):
                raise ResultsError(f"{where}: an empty value must have a note that begins {NOT_FOUND!r}")
            key = (text["experiment"], text["method"], text["dataset"], text["metric"])
            if key in keys:
                raise ResultsError(f"{where}: {key} appears twice")
            keys.add(key)
            rows.append({**text, "source": source})
    frame = pd.DataFrame(rows, columns=list(PAPER_REFERENCE_COLUMNS))
    frame["value"] = pd.to_numeric(frame["value"].replace("", None), errors="raise").astype("float64")
    return frame


def paper_value(reference: pd.DataFrame, experiment: str, method: str, dataset: str, metric: str) -> pd.Series | None:
    """The reference row of that key, or None when the CSV has none."""
    match = reference[(reference["experiment"] == experiment) & (reference["method"] == method)
                      & (reference["dataset"] == dataset) & (reference["metric"] == metric)]
    return None if match.empty else match.iloc[0]
