# The tunebench reproduction DAG: pre-train the source DiT, then the Diff-Tuning comparison and forgetting curve,
# then DEFT and its baselines on the image inverse problems, then DEFT motif scaffolding on Cα backbones.
# Run: snakemake --profile workflows/profiles/local --configfile workflows/config/mini.yaml [all]   (smoke.yaml for a
# minutes-long check); the profile holds the resources rules share (default-resources). Targets: `headline` (the
# default) and `all` (every study), below; apart from both, `assets` (rebuild and compare the pinned assets),
# `deft_protocol` (DEFT's protocol switches against their defaults) and `regime` (Diff-Tuning vs full fine-tuning
# as fine-tuning runs longer).
import time

from snakemake.utils import min_version

from tunebench.io import write_json

min_version("9.0")


configfile: "workflows/config/mini.yaml"


report: "workflows/report/workflow.rst"


include: "workflows/rules/common.smk"
include: "workflows/rules/pretrain.smk"
include: "workflows/rules/features.smk"
include: "workflows/rules/latents.smk"
include: "workflows/rules/difftune.smk"
include: "workflows/rules/difftune_studies.smk"
include: "workflows/rules/difftune_regime.smk"
include: "workflows/rules/controlnet.smk"
include: "workflows/rules/deft.smk"
include: "workflows/rules/deft_protocol.smk"
include: "workflows/rules/protein.smk"
include: "workflows/rules/assets.smk"
include: "workflows/rules/claims.smk"
include: "workflows/rules/report.smk"

# Rules that only merge results, pair per-image scores, cut the protein problems, render tables and figures, judge
# the claims or name targets: seconds each, so on a cluster they run on the submitting node instead of waiting in a
# queue as jobs of their own (tests/workflow/test_slurm_profile.py checks the list against the rules' names).
localrules:
    headline,
    all,
    assets,
    deft_protocol,
    claims,
    difftune_results,
    difftune_table,
    forgetting_figure,
    peft_results,
    peft_table,
    difftune_seeds_results,
    difftune_seeds_table,
    ablation_results,
    ablation_figure,
    ablation_components_results,
    ablation_components_table,
    regime,
    regime_results,
    regime_table,
    regime_figure,
    controlnet_summary,
    controlnet_table,
    controlnet_figure,
    controlnet_pictures,
    deft_results,
    deft_table,
    deft_paired,
    deft_paired_table,
    deft_amortised_results,
    deft_amortised_table,
    deft_protocol_paired,
    deft_protocol_results,
    deft_protocol_table,
    protein_problems,
    protein_results,
    protein_table,
    protein_amortised_results,
    protein_amortised_table,
    protein_figure,
    samples_figure,
    forgetting_splice_figure,
    deft_recon_figure,
    report_page,


# Two tiers, each asking for every product of its studies, intermediates included: Snakemake does not rerun a job
# whose output was deleted while its dependents are up to date, so requesting every product makes a deleted
# intermediate (and then only its dependents) run again. A product of the headline is the same whichever tier made
# it, so after `all` the headline has nothing to do.
# The headline (default): the source model, the Diff-Tuning comparison and forgetting curve, DEFT and its baselines,
# motif scaffolding, their picture grids, the ledger and the report page (tier_products:
# workflows/rules/helpers/report.smk).
rule headline:
    default_target: True
    input:
        tier_products("headline"),
        claims_outputs("headline"),
        report_outputs("headline"),


# Everything: the headline, the PEFT table and ablations, ControlNet convergence and DEFT's amortised upper bounds
# (images and protein), with the ledger and report page of this tier.
rule all:
    input:
        rules.headline.input,
        tier_products("all"),
        claims_outputs("all"),
        report_outputs("all"),


# The run's start and targets, for its wall time (the tiers' budgets are about it, not the jobs' sum).
onstart:
    targets = sorted(workflow.dag_settings.targets) or ["headline"]  # none named: the default target
    write_json(f"{RUNS}/run-started.json", {"started": time.time(), "targets": targets})


# Per-job wall and CPU times (from every rule's benchmark file, also jobs of earlier runs still there), and the run's
# own row in run_times.csv.
onsuccess:
    shell(f"{PYTHON} -m benchmarks.timing_summary {RUNS}/benchmarks --out {RESULTS}/timing.csv"
          f" --run-started {RUNS}/run-started.json --runs-out {RESULTS}/run_times.csv")
