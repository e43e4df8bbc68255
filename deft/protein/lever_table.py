"""The protein prior's levers side by side: one row per measured setting, read from the `prior_quality` tables that
measured it, plus the training crops as the reference.

    python -m deft.protein.lever_table --spec levers.csv --out results/bench/protein-prior-levers

SPEC is a CSV with columns lever, setting, quality (a `python -m deft.protein.prior_quality` --out-csv), step (the
row of that table: a checkpoint step; blank for its last prior row) and command (how the prior was trained and
scored). The reference row is the `data` row of the first table. Writes OUT.csv (every quality column with its
interval, the spec's text and the command) and OUT.md (the figures a reader compares, with 95% intervals).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from tunebench.cli import run_cli
from tunebench.config import ConfigError

SPEC_COLUMNS = ("lever", "setting", "quality", "step", "command")
FIGURES = ("valid_bonds", "clash_free", "rg_mean", "helix", "strand")


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a CSV file, with a clear error when it is missing."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist (python -m deft.protein.prior_quality --out-csv)")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def quality_row(table: list[dict], step: str, where: str) -> dict:
    """The row of `step` (blank: the last prior row) of a prior_quality table."""
    priors = [row for row in table if row["step"] != "data"]
    chosen = [row for row in priors if row["step"] == step] if step else priors[-1:]
    if not chosen:
        raise ConfigError(f"{where}: no row for step {step or '(last)'}; steps there: "
                          f"{', '.join(row['step'] for row in priors) or 'none'}")
    return chosen[0]


def lever_rows(spec: list[dict]) -> list[dict]:
    """The reference row, then one row per spec entry, each with every quality column."""
    missing = [c for c in SPEC_COLUMNS if spec and c not in spec[0]]
    if not spec or missing:
        raise ConfigError(f"the spec needs a header with {', '.join(SPEC_COLUMNS)} and at least one row"
                          + (f"; missing: {', '.join(missing)}" if missing else ""))
    tables = {entry["quality"]: read_rows(entry["quality"]) for entry in spec}
    data = [row for row in tables[spec[0]["quality"]] if row["step"] == "data"]
    rows = [{"lever": "reference", "setting": f"training crops ({data[0]['length']} residues)", **data[0],
             "command": ""}] if data else []
    for number, entry in enumerate(spec, start=2):
        row = quality_row(tables[entry["quality"]], entry["step"].strip(), f"spec row {number} ({entry['quality']})")
        rows.append({"lever": entry["lever"], "setting": entry["setting"], **row, "command": entry["command"]})
    return rows


def _interval(row: dict, name: str, digits: int) -> str:
    """'value [low, high]' (or the value alone where the row has no interval)."""
    value = float(row[name])
    low, high = row.get(f"{name}_low", ""), row.get(f"{name}_high", "")
    if low == "" or high == "":
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{float(low):.{digits}f}, {float(high):.{digits}f}]"


def markdown(rows: list[dict]) -> str:
    """The comparison table: valid bonds and clash-free with 95% intervals, Rg, helix and strand fractions."""
    lines = ["| lever | setting | step | sampler | valid bonds | clash-free | Rg (Å) | helix | strand |",
             "| --- | --- | ---: | --- | --- | --- | --- | ---: | ---: |"]
    for row in rows:
        sampler = (f"{row['sampler']} {row['sample_steps']}, η {row['eta']}, noise {row['noise_scale']}"
                   if row.get("sampler") else "")
        lines.append(f"| {row['lever']} | {row['setting']} | {row['step'] if row['step'] != 'data' else ''} | "
                     f"{sampler} | {_interval(row, 'valid_bonds', 3)} | {_interval(row, 'clash_free', 2)} | "
                     f"{_interval(row, 'rg_mean', 1)} | {float(row['helix']):.3f} | {float(row['strand']):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Parse flags, gather the rows, write OUT.csv and OUT.md."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.lever_table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", required=True, type=Path, help="CSV: lever, setting, quality, step, command")
    parser.add_argument("--out", required=True, type=Path, help="output stem: OUT.csv and OUT.md are written")
    args = parser.parse_args(argv)
    from tunebench.io import atomic_path, write_csv

    rows = lever_rows(read_rows(args.spec))
    columns = list(dict.fromkeys(["lever", "setting", *(k for row in rows for k in row if k != "command"),
                                  "command"]))
    write_csv(args.out.with_suffix(".csv"), columns, [{c: row.get(c, "") for c in columns} for row in rows])
    with atomic_path(args.out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown(rows))
    print(args.out.with_suffix(".md"))


if __name__ == "__main__":
    run_cli(main)
