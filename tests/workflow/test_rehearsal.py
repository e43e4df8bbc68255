"""The rehearsal of the paper DAG (workflows/config/rehearsal.yaml over paper.yaml, docs/workflow.md "Rehearsal"):
stand-in inputs in the paper's formats (python -m deft.rehearsal_inputs), then `snakemake all` for real on CPU, in a
scratch copy of the workflow. Every rule of the paper plan runs, every results row says it is a rehearsal, and a
run killed with SIGKILL at a seeded moment and restarted ends with the same numbers, rerunning only what the kill
left unfinished.
"""

import base64
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psutil
import pytest

from benchmarks.results import REHEARSAL_PREFIX, RESULT_COLUMNS, read_results
from tests.workflow.test_workflow import planned_jobs

pytestmark = pytest.mark.rehearsal

ROOT = Path(__file__).resolve().parents[2]
# The jobs import this checkout's packages (the shared venv may install another); one intra-op thread per job.
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
CONFIGS = ("workflows/config/paper.yaml", "workflows/config/rehearsal.yaml")
# Results files (benchmarks.results schema) that target `all` writes at paper scale, among others.
RESULTS_FILES = {"difftune_main", "difftune_peft", "ablation_components", "ablation_tau", "deft_main", "deft_paired",
                 "protein_motif", "protein_amortised", "controlnet"}
KILL_SEED = 23
# The killed run's target and its rules (every job it runs).
KILL_TARGET = "results/paper/tables/difftune_main.md"
KILL_CHAIN = [("retention_set", "cache_latents", "fid_reference"), ("finetune",), ("sample_finetuned",),
              ("fid_finetuned",), ("difftune_results",), ("difftune_table",)]  # stages that wait for each other
KILL_RULES = {rule for stage in KILL_CHAIN for rule in stage}


@dataclass
class Run:
    """A finished `snakemake all` of the rehearsal: its folder, output, and wall and CPU seconds (its jobs')."""

    workdir: Path
    output: str
    wall_s: float
    cpu_s: float


def snakemake(*args, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run Snakemake in `cwd` and return the finished process (stdout and stderr as text)."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=3600)


def dag_args(inputs: Path) -> list[str]:
    """Target `all` under the local profile, paper.yaml with the rehearsal and the stand-ins' paths over it."""
    return ["all", "--profile", "workflows/profiles/local", "--printshellcmds", "--configfile", *CONFIGS,
            str(inputs / "paths.yaml")]


def copy_workflow(workdir: Path, folder: Path) -> Path:
    """A fresh scratch copy of the workflow files of `workdir` (the module's, before any run)."""
    folder.mkdir()
    shutil.copy(workdir / "Snakefile", folder)
    shutil.copytree(workdir / "workflows", folder / "workflows")
    (folder / "results").mkdir()
    shutil.copy(workdir / "results/paper_reference.csv", folder / "results")
    return folder


def results_files(workdir: Path) -> list[Path]:
    """Every CSV of results/paper/ in the results schema (its header is RESULT_COLUMNS)."""
    header = ",".join(RESULT_COLUMNS)
    return sorted(path for path in (workdir / "results/paper").glob("*.csv")
                  if path.read_text().split("\n", 1)[0] == header)


def children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's waited-for children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The stand-in inputs, written by the CLI."""
    folder = tmp_path_factory.mktemp("rehearsal-inputs")
    result = subprocess.run([sys.executable, "-m", "deft.rehearsal_inputs", "--out", str(folder)], env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


@pytest.fixture(scope="module")
def env(inputs):
    """The jobs' environment: LPIPS finds the stand-in AlexNet in TORCH_HOME, as it would find the real one."""
    return {**ENV, "TORCH_HOME": str(inputs / "torch-home")}


@pytest.fixture(scope="module")
def rehearsal(workdir, inputs, env, tmp_path_factory):
    """One uninterrupted rehearsal in a scratch copy of the workflow, timed."""
    folder = copy_workflow(workdir, tmp_path_factory.mktemp("rehearsal") / "work")
    start, cpu = time.time(), children_cpu_s()
    result = snakemake(*dag_args(inputs), cwd=folder, env=env)
    run = Run(folder, result.stdout + result.stderr, time.time() - start, children_cpu_s() - cpu)
    assert result.returncode == 0, run.output[-5000:]
    print(f"rehearsal: wall {run.wall_s:.0f} s, CPU {run.cpu_s:.0f} s, load {os.getloadavg()}")
    return run


def test_every_rule_of_the_paper_plan_runs(rehearsal, inputs, env):
    plan = snakemake("all", "--configfile", CONFIGS[0], str(inputs / "paths.yaml"), "--dry-run", "--forceall",
                     cwd=rehearsal.workdir, env=env)  # the paper DAG itself, without the rehearsal's cuts
    assert plan.returncode == 0, plan.stderr[-3000:]
    paper_rules = set(planned_jobs(plan.stdout))
    assert {"convert_adm", "cache_latents", "control_train", "protein_train_amortised", "all"} <= paper_rules
    # every rule of the paper plan ran at least once
    assert set(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", rehearsal.output)) == paper_rules
    timing = pd.read_csv(rehearsal.workdir / "results/paper/timing.csv")  # one row per job, from its benchmark
    assert len(timing) == rehearsal.output.count("Finished jobid: ") - 1 and timing["wall_s"].gt(0).all()  # not `all`
    # The data-parallel rules start their CLI through accelerate, as on the GPUs; DEFT's backbone is the converted ADM.
    for module in ("difftune.retention", "difftune.finetune", "tunebench.sample"):
        assert f"accelerate.commands.launch --num_processes 1 --num_machines 1 --mixed_precision no " \
               f"--dynamo_backend no -m {module} " in rehearsal.output, module
    assert f"deft.convert_adm --checkpoint {inputs / 'rehearsal-256x256_diffusion_uncond.pt'}" in rehearsal.output
    assert "--backbone runs/paper/adm_backbone/model" in rehearsal.output


def test_every_row_says_it_is_a_rehearsal_and_both_metrics_ran(rehearsal):
    results = rehearsal.workdir / "results/paper"
    files = results_files(rehearsal.workdir)
    assert RESULTS_FILES <= {path.stem for path in files}
    rows = read_results(*files)
    assert rows["model"].str.startswith(REHEARSAL_PREFIX).all() and rows["extractor"].str.startswith(
        REHEARSAL_PREFIX).all()
    fid = rows[rows["metric"] == "fid_inception"]
    assert len(fid) and fid["value"].notna().all() and fid["extractor"].str.startswith("rehearsal-inception-").all()
    lpips = rows[(rows["experiment"] == "deft_main") & (rows["metric"] == "lpips")]
    assert set(lpips["method"]) == {"deft", "ddrm"} and lpips["value"].notna().all()  # the stand-in AlexNet
    for table in ("difftune_main", "difftune_peft", "deft_main", "deft_paired", "protein_motif", "controlnet"):
        assert "|" in (results / f"tables/{table}.md").read_text(), table
    assert (results / "figures/forgetting.png").is_file() and (results / "claims/all.csv").is_file()
    skipped = [line for line in (rehearsal.workdir / "runs/paper/logs/fid_reference/artbench10.log").read_text()
               .splitlines() if "truncated.jpg" in line]
    assert skipped  # the truncated stand-in image was skipped, with its name


def test_the_html_report_of_the_rehearsal_builds(rehearsal, inputs, env):
    report = snakemake(*dag_args(inputs), "--report", "report.html", cwd=rehearsal.workdir, env=env)
    assert report.returncode == 0, report.stderr[-3000:]
    html = (rehearsal.workdir / "report.html").read_text(errors="replace")
    assert all(name in html for name in ("difftune_main.md", "deft_main.md", "protein_motif.md", "controlnet.png"))


def incomplete_outputs(workdir: Path) -> set[str]:
    """The outputs Snakemake has marked incomplete (its running jobs'): the base64 file names of
    .snakemake/incomplete/."""
    folder = workdir / ".snakemake/incomplete"
    return {base64.urlsafe_b64decode(path.name).decode() for path in folder.iterdir()} if folder.is_dir() else set()


def finished_jobs(workdir: Path) -> dict[str, int]:
    """Every finished job's benchmark file (written when the job succeeds) → its modification time in ns."""
    benchmarks = workdir / "runs/paper/benchmarks"
    return {str(path.relative_to(benchmarks)): path.stat().st_mtime_ns for path in benchmarks.rglob("*.tsv")}


def metric_rows(path: Path) -> pd.DataFrame:
    """A results file's keys and numbers, without wall-time metrics (which no two runs share), sorted."""
    rows = read_results(path)
    rows = rows[~rows["metric"].str.contains("seconds|time", regex=True)]
    columns = ["experiment", "method", "dataset", "metric", "seed", "value", "ci_low", "ci_high", "n_samples"]
    return rows.sort_values(columns[:5])[columns].reset_index(drop=True)


def test_a_run_killed_at_a_seeded_moment_restarts_to_the_same_numbers(rehearsal, workdir, inputs, env, tmp_path):
    # The uninterrupted reference is the rehearsal above. The killed run makes KILL_TARGET only (the Diff-Tuning
    # comparison: retention set, latent cache, fine-tuning through accelerate, samples, Inception FID, its table),
    # in a fresh folder: the whole DAG twice is too slow for the suite on a shared 2-core machine.
    folder = copy_workflow(workdir, tmp_path / "work")
    args = [KILL_TARGET, *dag_args(inputs)[1:]]  # before --configfile, which takes every value after it
    plan = snakemake(*args, "--dry-run", cwd=folder, env=env)
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = planned_jobs(plan.stdout)
    assert set(planned) == KILL_RULES
    # The target's expected wall: its chain of jobs, each stage at the rehearsal's median job time of its rules.
    walls = pd.read_csv(rehearsal.workdir / "results/paper/timing.csv").groupby("rule")["wall_s"].median()
    target_wall = sum(walls[list(stage)].max() for stage in KILL_CHAIN)
    moment = random.Random(KILL_SEED).uniform(0.2, 0.8) * target_wall
    with open(tmp_path / "killed.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=folder, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(moment)
        assert process.poll() is None, "the run ended before the kill"
        group = psutil.Process(process.pid).children(recursive=True)
        os.killpg(process.pid, signal.SIGKILL)  # Snakemake and its running jobs: one process group
        process.wait()
    _, alive = psutil.wait_procs(group, timeout=30)
    assert not alive, alive
    interrupted = incomplete_outputs(folder)
    assert interrupted, "no job was running at the kill"
    before = finished_jobs(folder)
    # A killed Snakemake leaves its lock behind; --unlock removes it and touches nothing else.
    unlock = snakemake(*args, "--unlock", cwd=folder, env=env)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    restart = snakemake(*args, cwd=folder, env=env)
    assert restart.returncode == 0, (restart.stdout + restart.stderr)[-5000:]
    after = finished_jobs(folder)
    # No job that had finished ran again (its benchmark file is untouched); the interrupted ones were made again in
    # full (--rerun-incomplete) and are no longer marked incomplete; the restart ran every job the kill left undone.
    assert {job: after[job] for job in before} == before
    assert all((folder / output).exists() for output in interrupted) and not incomplete_outputs(folder)
    assert Counter(job.split("/")[0].removesuffix(".tsv") for job in after) == planned
    print(f"killed after {moment:.0f} s with {sorted(interrupted)} running; the restart ran "
          f"{len(set(after) - set(before))} of {len(after)} jobs")
    results = "results/paper/difftune_main.csv"
    pd.testing.assert_frame_equal(metric_rows(folder / results), metric_rows(rehearsal.workdir / results))
    assert (folder / KILL_TARGET).read_text() == (rehearsal.workdir / KILL_TARGET).read_text()
