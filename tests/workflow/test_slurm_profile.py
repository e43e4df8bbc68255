"""The SLURM profile routes every job by what it asks for: a job with `gpu > 0` to the GPU partition, every other
cluster job to the CPU partition (checked on the paper configuration's whole plan, target `all`), and the small
rules (results merges, paired scores, the protein problems, tables, figures, the ledger, the targets) run on the
submitting node (`localrules`; a dry run does not print which jobs are local, so the directive is read from the
Snakefile). tests/workflow/test_slurm_cluster.py runs the smoke DAG on a real one-machine cluster."""

import re
from pathlib import Path

import pytest

from tests.workflow.test_workflow import paper_config, snakemake

ROOT = Path(__file__).resolve().parents[2]

LOCAL_RULE_PATTERN = re.compile(r"_(results|table|figure|summary|paired)$|^(claims|headline|all|protein_problems)$")


def planned(output: str) -> list[dict[str, str]]:
    """Each planned job: `local` (printed as `localrule`), its rule and its resources as a dict."""
    jobs = []
    for block in re.split(r"^\[.+\]\n", output, flags=re.MULTILINE)[1:]:
        head = block.splitlines()[0]
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        pairs = dict(item.split("=", 1) for item in resources[1].split(", ")) if resources else {}
        jobs.append({"rule": head.split()[1].rstrip(":"), **pairs})
    return jobs


def local_rules() -> set[str]:
    """The rule names of the Snakefile's `localrules:` directive."""
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (ROOT / "Snakefile").read_text(), flags=re.MULTILINE)
    return set(re.findall(r"\w+", block[1]))


@pytest.fixture(scope="module")
def paper_plan(workdir, tmp_path_factory):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    config = paper_config(workdir, tmp_path_factory.mktemp("paper"))
    result = snakemake("all", "--profile", "workflows/profiles/slurm", "--configfile", str(config), "--dry-run",
                       "--forceall", cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "localrules directive specifies rules that are not present" not in result.stdout + result.stderr
    return planned(result.stdout)


def test_every_gpu_job_goes_to_the_gpu_partition_and_no_other(paper_plan):
    cluster = [job for job in paper_plan if job["rule"] not in local_rules()]
    gpu_rules = {job["rule"] for job in cluster if int(job.get("gpu", "0")) > 0}
    assert {"finetune", "deft_train", "deft_reconstruct", "protein_sample", "control_train"} <= gpu_rules
    misrouted = sorted({(job["rule"], job.get("slurm_partition")) for job in cluster
                        if job.get("slurm_partition") != ("gpu" if int(job.get("gpu", "0")) > 0 else "cpu")})
    assert not misrouted, misrouted


def test_small_rules_run_on_the_submitting_node(paper_plan):
    small = {job["rule"] for job in paper_plan if LOCAL_RULE_PATTERN.search(job["rule"])}
    expected = {"claims", "deft_table", "deft_paired", "protein_problems", "protein_figure", "all"}
    assert expected <= small <= local_rules()
    assert not {job["rule"] for job in paper_plan if job["rule"] in local_rules() and int(job.get("gpu", "0")) > 0}
