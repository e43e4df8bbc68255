"""The prior-lever table: rows picked from prior_quality tables by step, the data row as reference, intervals in the
Markdown, and errors that name the missing step or column."""

import csv

import pytest

from deft.protein import lever_table
from tunebench.config import ConfigError

QUALITY_COLUMNS = ("step", "samples", "length", "sampler", "sample_steps", "eta", "noise_scale", "valid_bonds",
                   "valid_bonds_low", "valid_bonds_high", "clash_free", "clash_free_low", "clash_free_high",
                   "rg_mean", "rg_mean_low", "rg_mean_high", "rg_std", "helix", "strand")


def _quality(path, rows):
    """A prior_quality-style table: the data row, then one row per (step, valid_bonds)."""
    data = {"step": "data", "samples": 200, "length": 48, "valid_bonds": 0.998, "valid_bonds_low": 0.997,
            "valid_bonds_high": 0.999, "clash_free": 1.0, "clash_free_low": 0.98, "clash_free_high": 1.0,
            "rg_mean": 13.06, "rg_mean_low": 12.7, "rg_mean_high": 13.4, "rg_std": 2.2, "helix": 0.34, "strand": 0.12}
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, QUALITY_COLUMNS, restval="")
        writer.writeheader()
        writer.writerow(data)
        for step, bonds in rows:
            writer.writerow({**data, "step": step, "sampler": "ddim", "sample_steps": 50, "eta": 1.0,
                             "noise_scale": 0.6, "valid_bonds": bonds, "valid_bonds_low": bonds - 0.01,
                             "valid_bonds_high": bonds + 0.01, "helix": 0.1})
    return path


def _spec(path, entries):
    """The lever spec CSV."""
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, lever_table.SPEC_COLUMNS)
        writer.writeheader()
        writer.writerows(entries)
    return path


def test_rows_follow_the_spec_with_the_data_row_first(tmp_path):
    first = _quality(tmp_path / "a.csv", [(1000, 0.3), (2000, 0.5)])
    second = _quality(tmp_path / "b.csv", [(500, 0.9)])
    spec = _spec(tmp_path / "spec.csv", [
        {"lever": "architecture", "setting": "EGNN", "quality": first, "step": "1000", "command": "train egnn"},
        {"lever": "architecture", "setting": "EGNN, longer", "quality": first, "step": "", "command": "train egnn"},
        {"lever": "architecture", "setting": "frames", "quality": second, "step": "", "command": "train frames"}])
    lever_table.main(["--spec", str(spec), "--out", str(tmp_path / "levers")])
    with (tmp_path / "levers.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["lever"], r["step"], r["valid_bonds"]) for r in rows] == [
        ("reference", "data", "0.998"), ("architecture", "1000", "0.3"), ("architecture", "2000", "0.5"),
        ("architecture", "500", "0.9")]
    assert rows[-1]["command"] == "train frames" and list(rows[0])[-1] == "command"
    text = (tmp_path / "levers.md").read_text()
    assert "| architecture | frames | 500 | ddim 50, η 1.0, noise 0.6 | 0.900 [0.890, 0.910] |" in text
    assert "| reference | training crops (48 residues) |  |  | 0.998 [0.997, 0.999] |" in text


def test_errors_name_the_missing_step_and_columns(tmp_path):
    quality = _quality(tmp_path / "a.csv", [(1000, 0.3)])
    spec = _spec(tmp_path / "spec.csv", [{"lever": "x", "setting": "y", "quality": quality, "step": "7000",
                                          "command": ""}])
    with pytest.raises(ConfigError, match="no row for step 7000; steps there: 1000"):
        lever_table.main(["--spec", str(spec), "--out", str(tmp_path / "out")])
    (tmp_path / "bad.csv").write_text("lever,setting\nx,y\n")
    with pytest.raises(ConfigError, match="missing: quality, step, command"):
        lever_table.main(["--spec", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out.md").exists()
