"""Fixtures of the workflow tests."""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A scratch copy of the workflow files, the pinned assets and the paper reference (one per test module), so runs
    and plans never write into the checkout."""
    work = tmp_path_factory.mktemp("workflow")
    shutil.copy(ROOT / "Snakefile", work)
    shutil.copytree(ROOT / "workflows", work / "workflows")
    if (ROOT / "assets").is_dir():
        shutil.copytree(ROOT / "assets", work / "assets")
    (work / "results").mkdir()
    shutil.copy(ROOT / "results/paper_reference.csv", work / "results")
    return work
