"""The tree passes ruff (pyflakes, pycodestyle, import order, bugbear) with the settings in pyproject.toml."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def ruff_command() -> list[str]:
    """ruff from the test environment (the `test` extra pins it), or skip with the install hint."""
    beside_python = Path(sys.executable).with_name("ruff")
    if beside_python.exists():
        return [str(beside_python)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.skip("ruff is not installed: pip install -e '.[test]'")


def test_ruff_finds_nothing():
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "--output-format", "concise", "."],
                            cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_catches_a_planted_unused_import_and_misordered_imports(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('"""Planted."""\n\nimport sys\nimport os\n')
    result = subprocess.run([*ruff_command(), "check", "--no-cache", "--output-format", "concise",
                             "--config", str(REPO_ROOT / "pyproject.toml"), str(planted)],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "F401" in result.stdout and "I001" in result.stdout, result.stdout
