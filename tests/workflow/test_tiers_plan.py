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
                  "protein_table", "claims", "sample_pretrained", "samples_figure", "forgetting_splice_figure",
                  "deft_recon_figure", "report_page"}
STUDY_RULES = {"finetune_params", "peft_table", "difftune_seeds_results", "difftune_seeds_table", "retention_source",
               "ablation_results", "ablation_figure", "ablation_components_table",
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
    return {target: plan(workdir, target) for target in ("headline", "all", "regime")}


def rules(jobs: dict) -> list[str]:
    return [job["rule"] for job in jobs.values()]


def test_the_headline_holds_the_main_studies_and_no_other(plans):
    headline = rules(plans["headline"])
    assert HEADLINE_RULES <= set(headline) and not STUDY_RULES & set(headline)
    difftune = MINI["difftune"]
    assert headline.count("finetune") == len(difftune["datasets"]) * len(difftune["methods"])
    deft = MINI["deft"]
    assert headline.count("deft_reconstruct") == sum(1 + len(deft["task_baselines"][task]) for task in deft["tasks"])
    # A picture grid per dataset and per task, and the tier's report page over the headline's tables and figures.
    assert headline.count("samples_figure") == len(difftune["datasets"])
    assert headline.count("deft_recon_figure") == len(deft["tasks"])
    page = next(job for job in plans["headline"].values() if job["rule"] == "report_page")
    assert "results/mini/claims/headline.csv" in page["input"] and "difftune_peft.md" not in page["Shell command"]
    assert "results/mini/figures/samples_mnist5k.png" in page["input"]
    assert "forgetting.png=workflows/report/forgetting.rst" in page["Shell command"]
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
    ledgers = {job["wildcards"] for job in plans["all"].values() if job["rule"] == "claims"}
    assert ledgers == {"tier=headline", "tier=all"}  # the headline's ledger and the complete one
    pages = {job["wildcards"]: job for job in plans["all"].values() if job["rule"] == "report_page"}
    assert set(pages) == {"tier=headline", "tier=all"} and "difftune_peft.md" in pages["tier=all"]["input"]
    assert everything.count("protein_train_amortised") == 1 and everything.count("protein_sample") == (
        len(MINI["protein"]["baselines"]) + len(MINI["protein"]["heads"]) + 1)


def test_all_trains_the_seed_replicates_beside_the_unchanged_headline_runs(plans):
    """Every (dataset, method) once more per further training seed, sampled with the headline's sampling seeds; the
    headline trains seed 0 only, under its plain run names."""
    difftune = MINI["difftune"]
    seeds = difftune["training_seeds"]
    assert seeds[0] == 0 and len(seeds) == 3
    replicates = {output: job for output, job in plans["all"].items() if "@seed=" in output}
    finetunes = [job for job in replicates.values() if job["rule"] == "finetune"]
    assert len(finetunes) == (len(seeds) - 1) * len(difftune["datasets"]) * len(difftune["methods"])
    for job in finetunes:
        seed = re.search(r"method=\w+@seed=(\d+)", job["wildcards"])[1]
        assert int(seed) in seeds[1:] and f"--set train.seed={seed}" in job["Shell command"]
    samples = [job for job in replicates.values() if job["rule"] == "sample_finetuned"]
    assert len(samples) == len(finetunes)
    assert all(f"--seeds 0-{difftune['fid_samples'] - 1} " in job["Shell command"] for job in samples)
    summary = next(job for job in plans["all"].values() if job["rule"] == "difftune_seeds_results")
    inputs = summary["input"].split(", ")
    assert len(inputs) == len(seeds) * len(difftune["datasets"]) * len(difftune["methods"])
    assert "runs/mini/metrics/difftune_main/mnist5k/full_ft.csv" in inputs  # seed 0: the headline's own FID rows
    assert "runs/mini/metrics/difftune_seeds/mnist5k/diff_tuning@seed=2.csv" in inputs
    assert not any("seed=" in output or "difftune_seeds" in output for output in plans["headline"])


def wildcards(job: dict) -> dict[str, str]:
    """A planned job's wildcards, e.g. {'dataset': 'mnist5k', 'condition': 'canny'}."""
    return dict(pair.split("=", 1) for pair in job.get("wildcards", "").split(", ") if pair)


def test_the_single_dataset_studies_use_the_dataset_of_the_declared_rule(plans):
    """mini's `study_dataset: largest`: mnist5k, the downstream dataset with the most training images (4,000)."""
    assert MINI["difftune"]["study_dataset"] == "largest"
    jobs = plans["all"].values()
    forgetting = next(job for job in jobs if job["rule"] == "forgetting_curve")
    assert "--finetuned runs/mini/finetune/mnist5k/full_ft/model" in forgetting["Shell command"]
    assert "--ref runs/mini/fid-refs/mnist5k/" in forgetting["Shell command"]
    ablated = {wildcards(job)["dataset"] for job in jobs
               if job["rule"] == "fid_finetuned" and wildcards(job)["experiment"].startswith("ablation_")}
    assert ablated == {"mnist5k"}
    components = {wildcards(job)["method"] for job in jobs
                  if job["rule"] == "fid_finetuned" and wildcards(job)["experiment"] == "ablation_components"}
    assert components == {"full_ft", "tweight_only", "retention_only", "diff_tuning"}
    halves = {wildcards(job)["method"]: job["Shell command"] for job in jobs if job["rule"] == "finetune"
              and wildcards(job)["method"] in ("tweight_only", "retention_only")}
    assert set(halves) == {"tweight_only", "retention_only"}
    assert "--dataset mnist5k --method tweight_only " in halves["tweight_only"]
    assert "--retention runs/mini/retention " in halves["retention_only"]
    assert {wildcards(job)["dataset"] for job in jobs if job["rule"] == "control_train"} == {"mnist5k"}


def test_controlnet_arms_train_on_the_same_frozen_base_and_differ_only_in_the_objective(plans):
    control = MINI["controlnet"]
    assert control["objectives"] == ["standard", "diff_tuning"] and len(control["seeds"]) >= 3
    jobs = [job for job in plans["all"].values() if job["rule"] == "control_train"]
    keys = {(w["condition"], w["objective"], int(w["seed"])) for w in map(wildcards, jobs)}
    assert keys == {(c, o, s) for c in control["conditions"] for o in control["objectives"] for s in control["seeds"]}
    assert len(jobs) == len(keys)
    for job in jobs:
        objective, command = wildcards(job)["objective"], job["Shell command"]
        assert "--base assets/mini/source_dit " in command  # the pinned source DiT, in both arms
        assert f"--objective {objective} " in command and f"--set train.seed={wildcards(job)['seed']} " in command
        assert ("--retention runs/mini/retention " in command) == (objective == "diff_tuning")
    summary = next(job for job in plans["all"].values() if job["rule"] == "controlnet_summary")
    assert "--baseline standard " in summary["Shell command"]


def test_no_tier_measures_the_protocol_switches(plans):
    """The deft_protocol target stands apart, like `assets`."""
    assert not any(job["rule"].startswith("deft_protocol") for jobs in plans.values() for job in jobs.values())


def test_no_tier_runs_the_fine_tuning_length_study(plans):
    assert not any(job["rule"].startswith("regime") or "@steps=" in output
                   for target in ("headline", "all") for output, job in plans[target].items())


def test_the_length_study_continues_each_shorter_run_on_the_declared_datasets(plans):
    regime = MINI["difftune"]["regime"]
    assert regime["datasets"] == {"rule": "largest", "count": 2} and len(regime["seeds"]) >= 2
    jobs = [job for job in plans["regime"].values() if job["rule"] == "finetune"]
    runs = {(wildcards(job)["dataset"], wildcards(job)["method"]): job["Shell command"] for job in jobs}
    lengths = sorted({1000, *regime["steps"]})  # settings.difftune.train.steps and the study's
    studied = {key: command for key, command in runs.items() if key[0] in ("mnist5k", "fashion_footwear")}
    assert len(studied) == 2 * 2 * len(regime["seeds"]) * len(lengths)  # the two largest datasets
    # Beside them, only the main comparison's runs, which the study's ledger reads (difftune_main.csv).
    assert {method for (_, method) in set(runs) - set(studied)} == {"full_ft", "diff_tuning"}
    assert len(runs) == len(jobs)
    command = runs[("mnist5k", "diff_tuning@seed=1@steps=8000")]
    assert "--set train.seed=1 --set train.steps=8000 " in command
    assert ("--start-from runs/mini/finetune/mnist5k/diff_tuning@seed=1@steps=4000/checkpoints/checkpoint-0004000 "
            in command)
    assert ("--start-from runs/mini/finetune/fashion_footwear/full_ft/checkpoints/checkpoint-0001000 "
            in runs[("fashion_footwear", "full_ft@steps=4000")])
    assert "--start-from" not in runs[("mnist5k", "diff_tuning@seed=1")]  # the seed replicate of target all
    # The scale's own length is the headline's run, so those jobs are the headline's.
    assert runs[("mnist5k", "diff_tuning")] == plans["headline"][
        "runs/mini/finetune/mnist5k/diff_tuning/model, runs/mini/finetune/mnist5k/diff_tuning/summary.json"][
        "Shell command"]
    scored = {wildcards(job)["method"] for job in plans["regime"].values()
              if job["rule"] == "fid_finetuned" and wildcards(job)["dataset"] == "mnist5k"}
    assert "diff_tuning@steps=1000" in scored and "full_ft@seed=1@steps=8000" in scored
    ledgers = [job for job in plans["regime"].values() if job["rule"] == "claims"]
    assert [wildcards(job)["tier"] for job in ledgers] == ["regime"]
    assert "--results results/mini/difftune_main.csv results/mini/difftune_regime.csv --curves  " in ledgers[0][
        "Shell command"]


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
