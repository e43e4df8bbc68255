"""The Snakemake DAG: lint, a smoke run end to end in a scratch folder, and a second run with nothing to do."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.results import read_results
from difftune.forgetting import DIRECTIONS

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, cwd):
    return subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch copy of the workflow files, so runs never write into the checkout."""
    work = tmp_path_factory.mktemp("workflow")
    shutil.copy(ROOT / "Snakefile", work)
    shutil.copytree(ROOT / "workflows", work / "workflows")
    return work


def test_lint_is_clean(workdir):
    result = snakemake("--lint", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "good condition" in result.stdout + result.stderr


def test_smoke_dag_runs_then_has_nothing_to_do(workdir):
    config = ["--configfile", "workflows/config/smoke.yaml", "--cores", "2"]
    first = snakemake(*config, cwd=workdir)
    assert first.returncode == 0, first.stderr[-3000:]
    results = workdir / "results/smoke"
    assert (results / "pretrain/source_grid.png").is_file()
    assert (workdir / "runs/smoke/benchmarks/pretrain_source.tsv").is_file()
    assert "wrote 13 images" in (workdir / "runs/smoke/logs/sample_source_grid.log").read_text()
    table = (results / "tables/difftune_main.md").read_text()
    assert "| full_ft |" in table and "| diff_tuning |" in table and "Rel. change vs full_ft" in table
    rows = read_results(results / "difftune_main.csv")
    assert set(rows["dataset"]) == {"mnist5k", "textures"} and set(rows["method"]) == {"full_ft", "diff_tuning"}
    assert rows[rows["metric"] == "fid_local"]["value"].gt(0).all()
    curve = pd.read_csv(results / "forgetting.csv")
    assert set(curve["t0"]) == {0, 500, 1000} and set(curve["direction"]) == set(DIRECTIONS)
    assert (results / "figures/forgetting.png").stat().st_size > 10_000
    second = snakemake(*config, "--dry-run", cwd=workdir)
    assert second.returncode == 0 and "Nothing to be done" in second.stdout + second.stderr


def test_unknown_config_key_stops_the_run(workdir):
    bad = workdir / "bad.yaml"
    bad.write_text("scale: smoke\ngrid_seed: '0-3'\n")
    result = snakemake("--configfile", str(bad), "--dry-run", cwd=workdir)
    assert result.returncode != 0 and "grid_seed" in result.stdout + result.stderr
