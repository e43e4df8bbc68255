"""The SLURM path for real: a one-machine cluster (scripts/slurm-local.sh: partitions `cpu` and `gpu`, fake GPUs, no
accounting) runs the smoke headline through the project's SLURM profile, unchanged apart from the account given on
the command line, with the status command a cluster without accounting needs (`--slurm-status-command squeue`).
The controller's records of the run's jobs then show where each ran: every rule with `gpu > 0` in partition `gpu`
with one GPU allocated, every other cluster job in `cpu` without one, and the `localrules` on the submitting node.

The smoke config is already the small paper-shaped DAG (one dataset, one DEFT task, each study's rules once); its
two protein problems are settings inside one job, so no overlay would shrink it further. Marked `slurm`: the unit
suite (`bash scripts/test.sh`) deselects it, `.ci/run` runs it after the unit suite (`bash scripts/test.sh -m
slurm`). Needs root (the daemons) and slurm-wlm and munge, which the script installs with apt where missing; it
skips, saying why, where neither is possible. It took 24-30 minutes on a shared 2-core machine at load 6-11 (the
smoke DAG alone, locally, takes a few minutes; most of the rest is SLURM's per-job overhead, docs/workflow.md)."""

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.workflow.test_slurm_profile import local_rules, planned

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/slurm-local.sh"
PROFILE = "workflows/profiles/slurm"
# A port pair of its own, so that a cluster the user started on the default ports is left alone.
PORT = "6827"
ACCOUNT = "tunebench_ci"  # any name: the cluster has no accounting to check it against


def cluster_env(scratch: Path) -> dict[str, str]:
    """The environment of the script, of every SLURM client of the test's cluster and of its jobs. PYTHONPATH: the
    jobs run in a scratch copy of the workflow, where `python -m` would import the packages the venv's editable
    install points at, which need not be this checkout (a git worktree sharing another checkout's venv)."""
    return {**os.environ, "TUNEBENCH_SLURM_DIR": str(scratch), "TUNEBENCH_SLURM_PORT": PORT,
            "SLURM_CONF": str(scratch / "slurm.conf"), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT)}


def script(action: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), action], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The started cluster's client environment; the daemons are stopped afterwards."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    if os.geteuid() != 0:
        pytest.skip("the one-machine SLURM cluster needs root (slurmd and munged)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("no slurm binaries and no apt-get to install slurm-wlm and munge")
    env = cluster_env(tmp_path_factory.mktemp("slurm"))
    started = script("start", env)  # it removes a link to a killed run's config, dangling or not
    try:
        if started.returncode != 0 and not shutil.which("slurmctld"):
            why = (started.stderr.strip().splitlines() or ["no message"])[-1]
            pytest.skip(f"could not install slurm-wlm and munge: {why}")
        if started.returncode != 0 and "another cluster's config?" in started.stderr:
            pytest.skip("/etc/slurm/slurm.conf exists: another cluster is configured here, and job steps would read it")
        assert started.returncode == 0, started.stderr
        yield env
    finally:
        script("stop", env)


def test_a_gpu_job_outside_the_gpu_partition_is_refused(cluster, tmp_path):
    refused = subprocess.run(["sbatch", "--gpus=1", "--partition=cpu", "--wrap=true", f"--chdir={tmp_path}"],
                             env=cluster, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "GPU jobs go to 'gpu'" in refused.stderr
    refused = subprocess.run(["sbatch", "--partition=gpu", "--wrap=true", f"--chdir={tmp_path}"],
                             env=cluster, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "CPU jobs go to 'cpu'" in refused.stderr


def profile_resources_with_account() -> list[str]:
    """The profile's own `default-resources` with the account replaced, as `--default-resources` arguments (given on
    the command line, they replace the profile's whole list, so the other values are passed on as they are)."""
    resources = yaml.safe_load((ROOT / PROFILE / "config.yaml").read_text())["default-resources"]
    return [f"{key}={ACCOUNT if key == 'slurm_account' else value}" for key, value in resources.items()]


def controller_records(env: dict[str, str], workdir: Path) -> list[dict[str, str]]:
    """The controller's record of every job submitted from `workdir` (`scontrol show job --details`, one line
    each; the cluster keeps finished jobs for an hour)."""
    shown = subprocess.run(["scontrol", "show", "job", "--details", "--oneliner"], env=env, capture_output=True,
                           text=True, timeout=60, check=True)
    records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in shown.stdout.splitlines() if line.strip()]
    return [record for record in records if record.get("WorkDir") == str(workdir)]


def rule_of(record: dict[str, str]) -> str:
    """The rule of a job, from the comment the executor gives it (`rule_NAME` or `rule_NAME_wildcards_...`)."""
    return re.fullmatch(r"rule_(\w+?)(_wildcards_.*)?", record["Comment"])[1]


def test_the_smoke_headline_runs_through_the_profile_on_the_right_partitions(cluster, workdir):
    command = [sys.executable, "-m", "snakemake", "headline", "--profile", PROFILE, "--configfile",
               "workflows/config/smoke.yaml", "--default-resources", *profile_resources_with_account(),
               "--slurm-status-command", "squeue"]
    plan = subprocess.run([*command, "--dry-run"], cwd=workdir, env=cluster, capture_output=True, text=True,
                          timeout=300)
    assert plan.returncode == 0, plan.stderr[-3000:]
    jobs = planned(plan.stdout)
    # 24 and 30 minutes measured on a shared 2-core machine at load 6-11 (docs/workflow.md); the limit leaves room.
    run = subprocess.run(command, cwd=workdir, env=cluster, capture_output=True, text=True, timeout=2700)
    assert run.returncode == 0, run.stderr[-5000:]
    assert (workdir / "results/smoke/claims/headline.csv").is_file()

    records = controller_records(cluster, workdir)
    assert records and all(record["Account"] == ACCOUNT for record in records)
    assert all(record["JobState"] == "COMPLETED" for record in records), [
        (record["Comment"], record["JobState"]) for record in records if record["JobState"] != "COMPLETED"]
    # Each planned job but the localrules ran once on the cluster, and no localrule reached the queue.
    ran = [rule_of(record) for record in records]
    assert Counter(ran) == Counter(job["rule"] for job in jobs if job["rule"] not in local_rules())
    gpu_rules = {job["rule"] for job in jobs if int(job.get("gpu", "0")) > 0}
    assert {"finetune", "deft_train", "deft_reconstruct", "protein_sample"} <= gpu_rules
    routed = {(rule_of(record), record["Partition"], record["JOB_GRES"]) for record in records}
    assert routed == {(rule, "gpu", "gpu:1") if rule in gpu_rules else (rule, "cpu", "(null)") for rule in ran}
