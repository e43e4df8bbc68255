"""Every CLI answers --help quickly without importing torch, and has a console script that runs it as `python -m`
does."""

import os
import re
import resource
import subprocess
import sys
import tomllib

import pytest

from tests.import_graph import REPO_ROOT as ROOT
from tests.import_graph import cli_modules, parse_modules
from tunebench.console import CLI_MODULES, SCRIPTS, script_name

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
# CPU-time limit (user + system) of one --help run: a light CLI takes well under a second. CPU time, not wall time,
# because the suite runs on two workers beside the smoke DAG, and a busy machine stretches the wall clock.
HELP_SECONDS = 2.0
TORCH_IMPORT = re.compile(r"^import time:.*\|\s+torch$", re.MULTILINE)


def run_help(module: str) -> tuple[subprocess.CompletedProcess, float]:
    """`python -X importtime -m MODULE --help` and its CPU seconds (this process runs one child at a time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--help"], capture_output=True,
                            text=True, env=ENV, cwd=ROOT, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_every_cli_prints_its_help_quickly_without_importing_torch():
    for module in cli_modules():
        result, seconds = run_help(module)
        print(f"{module}: --help in {seconds:.2f} CPU s")
        assert result.returncode == 0 and result.stdout.startswith("usage:"), (module, result.stderr[-2000:])
        assert not TORCH_IMPORT.search(result.stderr), (
            f"{module} --help imports torch; move its heavy imports into the functions that use them")
        assert seconds < HELP_SECONDS, f"{module} --help took {seconds:.2f} CPU s (limit {HELP_SECONDS} s)"


def test_every_cli_has_a_console_script_and_every_script_names_a_function():
    assert sorted(CLI_MODULES) == cli_modules()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == set(SCRIPTS) == {script_name(module) for module in cli_modules()}
    modules = parse_modules()
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        tree = modules[module][1]
        assert function in {node.name for node in tree.body if hasattr(node, "name")}, (name, target)


@pytest.fixture
def script(tmp_path):
    """A console script as pip writes it, under the name given (run it with `python SCRIPT ARGS`)."""
    def make(name: str):
        path = tmp_path / name
        path.write_text("import sys\nfrom tunebench.console import main\nsys.exit(main())\n")
        return path
    return make


def test_a_console_script_runs_its_cli_with_one_line_errors(script, tmp_path):
    merge = script("benchmarks-merge-results")
    result = subprocess.run([sys.executable, str(merge), "--help"], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0 and "--out" in result.stdout
    missing = tmp_path / "missing.csv"
    result = subprocess.run([sys.executable, str(merge), "--out", str(tmp_path / "all.csv"), str(missing)],
                            capture_output=True, text=True, env=ENV)
    assert result.returncode == 2 and str(missing) in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_script_name_is_refused(script):
    result = subprocess.run([sys.executable, str(script("tunebench-nonsense"))], capture_output=True, text=True,
                            env=ENV)
    assert result.returncode == 1 and "tunebench-nonsense is not one of" in result.stderr
