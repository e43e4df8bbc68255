"""The `deft_protocol` target, planned: one reconstruction per switched run of config deft_protocol, a head trained
for each DEFT switch, the main study's default runs read instead of made again, and a config entry that cannot run
as meant stopped while planning, named."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MINI = yaml.safe_load((ROOT / "workflows/config/mini.yaml").read_text())


def plan(workdir, config: str, *overlays: str) -> subprocess.CompletedProcess:
    """The complete dry run of target deft_protocol under workflows/config/CONFIG.yaml (and `overlays`), with every
    job's shell command."""
    files = [f"workflows/config/{config}.yaml", *overlays]
    return subprocess.run([sys.executable, "-m", "snakemake", "deft_protocol", "--dry-run", "--forceall",
                           "--printshellcmds", "--configfile", *files], cwd=workdir, capture_output=True, text=True,
                          timeout=600)


def planned_jobs(output: str) -> dict[str, int]:
    """{rule: count} from the "Job stats" table of a dry run."""
    table = output.split("Job stats:")[1].split("total")[0]
    rows = [line.split() for line in table.splitlines()[3:] if line.strip()]
    return {name: int(count) for name, count in rows}


def expected_runs(config: dict) -> tuple[list, list]:
    """(task, method) of the switched runs of `config`, and of the default runs its main study does not make."""
    entries, deft = config["deft_protocol"], config["deft"]
    switched = [(entry.get("switched_task") or entry["task"], method)
                for entry in entries for method in entry["methods"]]
    main = {(task, method) for task in deft["tasks"] for method in ["deft", *deft["task_baselines"][task]]}
    defaults = {(entry["task"], method) for entry in entries for method in entry["methods"]}
    return switched, sorted(defaults - main)


@pytest.fixture(scope="module")
def smoke_plan(workdir):
    result = plan(workdir, "smoke")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_smoke_plans_the_switched_runs_and_only_the_defaults_the_main_study_lacks(smoke_plan):
    jobs = planned_jobs(smoke_plan)
    # heads: inpaint under exact_vjp, sr4_bicubic (row 14), and sr4's default (the smoke main study has no sr4)
    assert jobs["deft_protocol_train"] == 3
    # 4 switched runs, and the defaults of DDRM on deblur_gauss and DEFT on sr4
    assert jobs["deft_protocol_reconstruct"] == jobs["deft_protocol_evaluate"] == 6
    # inpaint's DEFT and DDRM defaults are the main study's own jobs, planned once
    assert jobs["deft_train"] == 1 and jobs["deft_reconstruct"] == jobs["deft_evaluate"] == 2
    assert jobs["deft_protocol_results"] == jobs["deft_protocol_table"] == 1
    assert "deft_protocol/inpaint/default" not in smoke_plan
    assert "runs/smoke/deft_protocol/deblur_gauss/default/ddrm/recon.npz" in smoke_plan
    assert "runs/smoke/deft_protocol/sr4/default/train/head" in smoke_plan


def test_smoke_commands_carry_each_switch(smoke_plan):
    # the head is trained and sampled under its switch (deft.reconstruct refuses a mismatch)
    assert smoke_plan.count("--task inpaint --set task.gradient=exact_vjp") == 2
    assert "--task inpaint --set baselines.ddrm_threshold=inclusive --method ddrm" in smoke_plan
    assert "--experiment deft_protocol --method deft@row1:task.gradient=exact_vjp --dataset inpaint" in smoke_plan
    assert "--experiment deft_protocol --method deft@row14:task=sr4_bicubic --dataset sr4" in smoke_plan
    merge = next(line for line in smoke_plan.splitlines() if "benchmarks.merge_results" in line)
    assert "--experiment deft_protocol" in merge and "runs/smoke/metrics/deft_main/inpaint/deft.csv" in merge
    assert "runs/smoke/metrics/deft_protocol/deblur_gauss/default/ddrm.csv" in merge
    assert "deft.report table --results results/smoke/deft_protocol.csv --layout protocol" in smoke_plan


def test_mini_plans_one_run_per_switch(workdir):
    result = plan(workdir, "mini")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    jobs = planned_jobs(result.stdout)
    switched, new_defaults = expected_runs(MINI)
    assert new_defaults == [("deblur_gauss", method) for method in ("ddrm", "dps", "pigdm", "reddiff")]
    assert jobs["deft_protocol_reconstruct"] == jobs["deft_protocol_evaluate"] == len(switched) + 4 == 32
    deft_runs = [run for run in switched if run[1] == "deft"]
    assert jobs["deft_protocol_train"] == len(deft_runs) == 12
    # the defaults of DEFT on the five main tasks, and of the baselines there, come from the main study
    assert jobs["deft_train"] == 5 and jobs["deft_reconstruct"] == 15


BAD_ENTRIES = {
    "unknown_task": ("- {row: 1, task: inpainting, methods: [deft], label: x, set: {task.gradient: exact_vjp}}",
                     "'inpainting' is not one of"),
    "unknown_key": ("- {row: 1, task: inpaint, methods: [deft], label: x, set: {task.gradiant: exact_vjp}}",
                    "entry 0 (row 1, inpaint, x): unknown config key 'task.gradiant'"),
    "unknown_value": ("- {row: 1, task: inpaint, methods: [deft], label: x, set: {task.gradient: exakt}}",
                      "config key 'task.gradient' = 'exakt' must be one of official, exact_vjp"),
    "unknown_entry_key": ("- {row: 1, task: inpaint, method: [deft], label: x, set: {task.gradient: exact_vjp}}",
                          "('method' was unexpected)"),
    "a_default_switch": (
        "- {row: 1, task: inpaint, methods: [deft], label: x, set: {task.gradient: official}}",
        "['task.gradient=official'] are the default settings"),
    "a_head_key_for_a_baseline": (
        "- {row: 7, task: inpaint, methods: [ddrm], label: x, set: {head.init_scaling_bias: 0.01}}",
        "['head.init_scaling_bias=0.01'] do not change method ddrm"),
}


@pytest.mark.parametrize("entry, message", BAD_ENTRIES.values(), ids=list(BAD_ENTRIES))
def test_a_bad_entry_stops_planning_naming_it(workdir, entry, message):
    overlay = workdir / "bad_protocol.yaml"
    overlay.write_text(f"deft_protocol:\n  {entry}\n")
    result = plan(workdir, "smoke", str(overlay))
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
