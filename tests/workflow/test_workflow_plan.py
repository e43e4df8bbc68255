"""Planning the DAG: it imports no torch (a dry run is seconds, and a login node needs no torch), and the per-task
baseline lists that stand in for building operators while planning agree with the baselines' own applicability
test on each task's operator."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from deft.baselines import supports
from deft.config import DeftConfig
from deft.operators.task_settings import TASK_PRESETS
from deft.operators.tasks import build_operator
from tunebench.config import resolve

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ("smoke", "mini", "paper")

# Plans the DAG in this process, then reports the exit code and every torch module that planning imported.
PLAN = """
import json, sys
from snakemake.cli import main
try:
    main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("PLAN " + json.dumps({"code": code, "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch")}))
"""


@pytest.mark.parametrize("scale", ["smoke", "mini"])
def test_planning_imports_no_torch(workdir, scale):
    args = ["--dry-run", "--forceall", "--quiet", "all", "--configfile", f"workflows/config/{scale}.yaml"]
    result = subprocess.run([sys.executable, "-c", PLAN, *args], cwd=workdir, capture_output=True, text=True,
                            timeout=300)
    lines = [line for line in result.stdout.splitlines() if line.startswith("PLAN ")]
    assert lines, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(lines[-1].removeprefix("PLAN "))
    assert report["code"] == 0, result.stderr[-3000:]
    assert report["torch"] == []


def configured_deft(scale: str) -> dict:
    """The `deft` section of workflows/config/SCALE.yaml as written (not merged with the Snakefile's default)."""
    return yaml.safe_load((ROOT / f"workflows/config/{scale}.yaml").read_text())["deft"]


def solvers(scale: str, task: str, baselines: list[str]) -> list[str]:
    """The baselines (in the given order) that `supports` accepts for `task`'s operator, built as the DEFT CLIs
    build it at `scale`: the scale's settings, then the task preset, at the scale's image size."""
    run = resolve(scale, {"task": {"name": task, **TASK_PRESETS[task]}}, cls=DeftConfig)
    op = build_operator(run.task, torch.zeros(1, dtype=torch.long), run.data.resolution, run.data.channels)
    return [name for name in baselines if supports(name, op)]


@pytest.mark.parametrize("scale", CONFIGS)
def test_task_baselines_are_those_that_can_solve_each_task(scale):
    deft = configured_deft(scale)
    assert list(deft["task_baselines"]) == deft["tasks"]
    for task in deft["tasks"]:
        assert deft["task_baselines"][task] == solvers(scale, task, deft["baselines"]), task


def test_a_task_without_an_svd_lists_no_ddrm():
    """The check above can fail: DDRM needs an SVD, which HDR's operator has not."""
    assert solvers("smoke", "hdr", ["dps", "ddrm"]) == ["dps"]
    assert solvers("smoke", "inpaint", ["dps", "ddrm"]) == ["dps", "ddrm"]


@pytest.mark.parametrize("scale", ["smoke", "mini"])
def test_protocol_baselines_can_solve_their_tasks(scale):
    """Each baseline of a deft_protocol entry solves the task of its switched runs and of its default run."""
    for entry in yaml.safe_load((ROOT / f"workflows/config/{scale}.yaml").read_text())["deft_protocol"]:
        baselines = [method for method in entry["methods"] if method != "deft"]
        for task in {entry["task"], entry.get("switched_task", entry["task"])}:
            assert solvers(scale, task, baselines) == baselines, (entry, task)
