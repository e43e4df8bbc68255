"""The main job's two tiers, planned at mini: `headline` (the default target) holds the main comparison, the
forgetting curve, DEFT with its baselines and motif scaffolding; `all` adds the studies. Every headline job is the
same job in `all` (same inputs, outputs and command), so neither tier changes a product of the other. And
scripts/main.sh runs the headline unless its first argument is `all`."""

import re
import shutil
import subprocess
import sys
from itertools import takewhile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MINI = yaml.safe_load((ROOT / "workflows/config/mini.yaml").read_text())
HEADLINE_RULES = {"sample_source_grid", "finetune", "fid_finetuned", "difftune_table", "forgetting_figure",
                  "deft_train", "deft_reconstruct", "deft_table", "deft_paired", "deft_paired_table", "protein_sample",
                  "protein_table"}
STUDY_RULES = {"finetune_params", "peft_table", "retention_source", "ablation_results", "ablation_figure",
               "control_train", "controlnet_table", "amortised_train", "deft_amortised_results",
               "deft_amortised_table", "protein_train_amortised", "protein_amortised_table"}
# Lines of a planned job that belong to the plan, not to the job.
PLAN_ONLY = ("jobid", "reason")


def plan(workdir, target: str) -> dict[str, dict[str, str]]:
    """The jobs of a complete dry run of `target` at mini, keyed by their outputs: the rule and each line Snakemake
    prints (input, output, log, benchmark, wildcards, resources, shell command) but the plan's own ones."""
    result = subprocess.run([sys.executable, "-m", "snakemake", target, "--dry-run", "--forceall", "--printshellcmds",
                             "--configfile", "workflows/config/mini.yaml"], cwd=workdir, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    jobs = {}
    for block in re.split(r"^\[.+\]\n", result.stdout, flags=re.MULTILINE)[1:]:  # each job starts with its date
        head, *lines = block.splitlines()
        job = {"rule": head.split()[1].rstrip(":")}  # "rule NAME:" or "localrule NAME:"
        # Its lines: "    KEY: VALUE" and the shell command last (the job table may follow at once).
        lines = takewhile(lambda line: line.startswith(("    ", "Shell command:")), lines)
        job |= {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in lines)}
        jobs[job.get("output", job["rule"])] = {key: value for key, value in job.items() if key not in PLAN_ONLY}
    return jobs


@pytest.fixture(scope="module")
def plans(workdir):
    return {target: plan(workdir, target) for target in ("headline", "all")}


def rules(jobs: dict) -> list[str]:
    return [job["rule"] for job in jobs.values()]


def test_the_headline_holds_the_main_studies_and_no_other(plans):
    headline = rules(plans["headline"])
    assert HEADLINE_RULES <= set(headline) and not STUDY_RULES & set(headline)
    difftune = MINI["difftune"]
    assert headline.count("finetune") == len(difftune["datasets"]) * len(difftune["methods"])
    deft = MINI["deft"]
    assert headline.count("deft_reconstruct") == sum(1 + len(deft["task_baselines"][task]) for task in deft["tasks"])
    assert not any(job["rule"].startswith("deft_") and "method=amortised" in job.get("wildcards", "")
                   for job in plans["headline"].values())
    assert not any(job["rule"].startswith("protein_") and "method=amortised" in job.get("wildcards", "")
                   for job in plans["headline"].values())


def test_all_adds_every_study(plans):
    everything = rules(plans["all"])
    assert (HEADLINE_RULES | STUDY_RULES) <= set(everything)
    peft_datasets = {re.search(r"dataset=(\w+)", job["wildcards"])[1]
                     for job in plans["all"].values() if job["rule"] == "finetune_params"}
    assert peft_datasets == set(MINI["difftune"]["datasets"])  # mini's `peft.datasets: all`
    assert everything.count("amortised_train") == len(MINI["deft"]["amortised"])
    assert everything.count("protein_train_amortised") == 1 and everything.count("protein_sample") == (
        len(MINI["protein"]["baselines"]) + len(MINI["protein"]["heads"]) + 1)


def test_no_tier_measures_the_protocol_switches(plans):
    """The deft_protocol target stands apart, like `assets`."""
    assert not any(job["rule"].startswith("deft_protocol") for jobs in plans.values() for job in jobs.values())


def test_every_headline_job_is_the_same_job_in_all(plans):
    headline = {output: job for output, job in plans["headline"].items() if job["rule"] != "headline"}
    assert headline
    for output, job in headline.items():
        assert plans["all"].get(output) == job, output


@pytest.mark.parametrize("args, target", [([], "headline"), (["all"], "all")])
def test_main_script_plans_the_headline_unless_asked_for_all(workdir, args, target):
    """scripts/main.sh itself, beside a stand-in set-up and the real Snakemake, asked for a dry run."""
    (workdir / "scripts").mkdir(exist_ok=True)
    shutil.copy(ROOT / "scripts/main.sh", workdir / "scripts")
    (workdir / "scripts/setup.sh").write_text("")
    snakemake = workdir / ".venv/bin/snakemake"
    snakemake.parent.mkdir(parents=True, exist_ok=True)
    snakemake.write_text(f'#!/usr/bin/env bash\nexec {sys.executable} -m snakemake "$@"\n')
    snakemake.chmod(0o755)
    result = subprocess.run(["bash", workdir / "scripts/main.sh", *args, "--dry-run", "--forceall"], cwd=workdir,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    job_counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.MULTILINE))
    assert job_counts[target] == "1" and int(job_counts["total"]) > 100
    assert ("protein_train_amortised" in job_counts) == (target == "all")
