# Helpers of Diff-Tuning's PEFT table and ablations (workflows/rules/difftune_studies.smk): the run names they train
# (difftune.variants) and the result files they compare.
from difftune.variants import Variant

PEFT = DIFFTUNE["peft"]
# `datasets: all` follows difftune.datasets, so the table cannot drift from the main comparison's list.
PEFT_DATASETS = DIFFTUNE["datasets"] if PEFT["datasets"] == "all" else PEFT["datasets"]


def check_difftune_studies():
    """The PEFT table compares with the main runs: its datasets must be main datasets (the ablations' is one by
    construction, STUDY_DATASET)."""
    unknown = sorted(set(PEFT_DATASETS) - set(DIFFTUNE["datasets"]))
    if unknown:
        raise WorkflowError(f"config key 'difftune.peft.datasets': {unknown} not in difftune.datasets "
                            f"{DIFFTUNE['datasets']}")
    if not ABLATIONS:
        return
    too_large = [n for n in ABLATIONS["retention_set"] if n != "source" and n > DIFFTUNE["retention_n"]]
    if too_large:
        raise WorkflowError(f"config key 'difftune.ablations.retention_set': sizes {too_large} exceed "
                            f"difftune.retention_n = {DIFFTUNE['retention_n']} (sizes are prefixes of that set)")
    if PAPER_SCALE and "source" in ABLATIONS["retention_set"]:
        raise WorkflowError("config key 'difftune.ablations.retention_set': 'source' needs real ImageNet images, "
                            "which have no dataset entry at paper scale yet; remove it")


check_difftune_studies()


def ablation_variant(knob, value):
    """The run name of one ablation point (retention_set: a size, or 'source' for real source images)."""
    method = ABLATIONS["method"]
    if knob == "retention_set":
        if value == "source":
            return Variant(method, key="retention", value="source")
        return Variant(method, key="retention_size", value=int(value))
    return Variant(method, key=knob, value=float(value))


def ablation_metric_files(knob):
    """One results CSV per point of an ablation knob, plus the baseline full_ft on the same dataset."""
    names = [ablation_variant(knob, value).name for value in ABLATIONS[knob]] + ["full_ft"]
    return [f"{RUNS}/metrics/ablation_{knob}/{STUDY_DATASET}/{name}.csv" for name in names]


def get_ablation_metrics(wildcards):
    """The result files of the ablation knob in the wildcards."""
    return ablation_metric_files(wildcards.knob)


def peft_methods():
    """Run names of the PEFT table: each PEFT method with full_ft and diff_tuning, then the all-weights runs."""
    return [f"{method}+{peft}" for peft in PEFT["methods"] for method in ("full_ft", "diff_tuning")] + [
        "full_ft", "diff_tuning"]


def study_runs():
    """(dataset, run name) of every model the PEFT table and the ablations train or reuse."""
    runs = {(dataset, name) for dataset in PEFT_DATASETS for name in peft_methods()}
    runs |= {(STUDY_DATASET, ablation_variant(knob, value).plain(DIFFTUNE["retention_n"]).name)
             for knob in ABLATION_KNOBS for value in ABLATIONS[knob]}  # no knobs without an ablations section
    return sorted(runs)


def peft_metric_files():
    """FID rows and trainable-parameter rows of every PEFT-table run."""
    pairs = dict(dataset=PEFT_DATASETS, method=peft_methods())
    return (expand(f"{RUNS}/metrics/difftune_peft/{{dataset}}/{{method}}.csv", **pairs)
            + expand(f"{RUNS}/metrics/difftune_peft_params/{{dataset}}/{{method}}.csv", **pairs))


def difftune_studies_outputs():
    """Every product of the PEFT table and the ablations, the models they train included."""
    return [
        *[f"{RUNS}/finetune/{dataset}/{name}/model" for dataset, name in study_runs()],
        *[f"{RUNS}/samples/{dataset}/{name}" for dataset, name in study_runs()],
        *peft_metric_files(),
        f"{RESULTS}/difftune_peft.csv",
        f"{RESULTS}/tables/difftune_peft.md",
        *[path for knob in ABLATION_KNOBS for path in ablation_metric_files(knob)],
        *expand(f"{RESULTS}/ablation_{{knob}}.csv", knob=ABLATION_KNOBS),
        *expand(f"{RESULTS}/figures/ablation_{{knob}}.png", knob=ABLATION_KNOBS),
    ]
