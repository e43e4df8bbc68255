"""Every CLI answers --help without importing torch, and has a console script that runs it as `python -m` does."""

import os
import re
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.import_graph import REPO_ROOT as ROOT, cli_modules, parse_modules
from tunebench.console import CLI_MODULES, SCRIPTS, script_name

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
# CLIs whose parser still needs a constant or flag helper from a library module that imports torch at its top (so
# --help takes seconds): --lpips-weights (benchmarks.lpips_metric), the task presets and DeftConfig
# (deft.operators.tasks, deft.config), the protein samplers' names (deft.protein.samplers), the ControlNet
# conditions; throughput is library and CLI in one module. Remove a module here once its --help is light.
HEAVY_HELP = {"benchmarks.image_scores", "benchmarks.throughput",
              "deft.train", "deft.amortised", "deft.reconstruct", "deft.evaluate", "deft.protein.sample",
              "difftune.controlnet.train"}
TORCH_IMPORT = re.compile(r"^import time:.*\|\s+torch$", re.MULTILINE)


def run_help(module: str) -> tuple[subprocess.CompletedProcess, float]:
    """`python -X importtime -m MODULE --help` and its wall seconds."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", module, "--help"], capture_output=True,
                            text=True, env=ENV, cwd=ROOT, timeout=300)
    return result, time.perf_counter() - started


def test_every_cli_prints_its_help_and_only_the_listed_ones_import_torch():
    modules = cli_modules()
    assert HEAVY_HELP <= set(modules), f"not CLIs any more: {sorted(HEAVY_HELP - set(modules))}"
    with ThreadPoolExecutor(max_workers=2) as pool:  # two: the suite's machines have two cores
        results = dict(zip(modules, pool.map(run_help, modules)))
    for module, (result, seconds) in results.items():
        print(f"{module}: --help in {seconds:.2f} s")
        assert result.returncode == 0 and result.stdout.startswith("usage:"), (module, result.stderr[-2000:])
        imports_torch = bool(TORCH_IMPORT.search(result.stderr))
        assert imports_torch == (module in HEAVY_HELP), (
            f"{module} --help {'imports' if imports_torch else 'no longer imports'} torch; "
            f"{'move its heavy imports into the functions that use them' if imports_torch else 'drop it from HEAVY_HELP'}")


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
