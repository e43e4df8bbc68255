# Helpers of Diff-Tuning's PEFT table, seed replicates and ablations (workflows/rules/difftune_studies.smk): the run
# names they train (difftune.variants) and the result files they compare.
from difftune.variants import Variant

PEFT = DIFFTUNE["peft"]
# `datasets: all` follows difftune.datasets, so the table cannot drift from the main comparison's list.
PEFT_DATASETS = DIFFTUNE["datasets"] if PEFT["datasets"] == "all" else PEFT["datasets"]
TRAINING_SEEDS = DIFFTUNE["training_seeds"]
# One seed is the main comparison alone: no spread to measure.
SEED_STUDY = len(TRAINING_SEEDS) > 1


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


def component_methods():
    """The methods of the components table, in its column order: full_ft, each half of the objective, diff_tuning."""
    return ["full_ft", *ABLATION_COMPONENTS, "diff_tuning"]


def component_metric_files():
    """One FID results CSV per method of the components table, on the study dataset (the two ends reuse the main
    comparison's models and samples)."""
    return [f"{RUNS}/metrics/ablation_components/{STUDY_DATASET}/{name}.csv" for name in component_methods()]


def peft_methods():
    """Run names of the PEFT table: each PEFT method with full_ft and diff_tuning, then the all-weights runs."""
    return [f"{method}+{peft}" for peft in PEFT["methods"] for method in ("full_ft", "diff_tuning")] + [
        "full_ft", "diff_tuning"]


def study_runs():
    """(dataset, run name) of every model the PEFT table and the ablations train or reuse."""
    runs = {(dataset, name) for dataset in PEFT_DATASETS for name in peft_methods()}
    runs |= {(STUDY_DATASET, ablation_variant(knob, value).plain(DIFFTUNE["retention_n"]).name)
             for knob in ABLATION_KNOBS for value in ABLATIONS[knob]}  # no knobs without an ablations section
    runs |= {(STUDY_DATASET, name) for name in ABLATION_COMPONENTS}
    return sorted(runs)


def seed_run(method, seed):
    """The run name of a method's replicate with training seed `seed`: method@seed=S, the plain name for seed 0."""
    return Variant(method, key="seed", value=seed).plain(DIFFTUNE["retention_n"]).name


def seed_metric_files():
    """FID rows of every (dataset, method, training seed): a seed-0 run is the main comparison's, and so is its file
    (the study scores no run twice)."""
    return [f"{RUNS}/metrics/{'difftune_main' if run == method else 'difftune_seeds'}/{dataset}/{run}.csv"
            for dataset in DIFFTUNE["datasets"] for method in DIFFTUNE["methods"] for seed in TRAINING_SEEDS
            for run in [seed_run(method, seed)]]


def seed_outputs():
    """Every product of the seed replicates (nothing with one seed): the runs, their samples and FID rows, the
    study's CSV and table."""
    if not SEED_STUDY:
        return []
    runs = [(dataset, seed_run(method, seed)) for dataset in DIFFTUNE["datasets"] for method in DIFFTUNE["methods"]
            for seed in TRAINING_SEEDS]
    return [
        *[f"{RUNS}/finetune/{dataset}/{name}/model" for dataset, name in runs],
        *[f"{RUNS}/samples/{dataset}/{name}" for dataset, name in runs],
        *seed_metric_files(),
        f"{RESULTS}/difftune_seeds.csv",
        f"{RESULTS}/tables/difftune_seeds.md",
    ]


def peft_metric_files():
    """FID rows and trainable-parameter rows of every PEFT-table run."""
    pairs = dict(dataset=PEFT_DATASETS, method=peft_methods())
    return (expand(f"{RUNS}/metrics/difftune_peft/{{dataset}}/{{method}}.csv", **pairs)
            + expand(f"{RUNS}/metrics/difftune_peft_params/{{dataset}}/{{method}}.csv", **pairs))


def difftune_studies_outputs():
    """Every product of the PEFT table, the seed replicates and the ablations, the models they train included."""
    return [
        *seed_outputs(),
        *[f"{RUNS}/finetune/{dataset}/{name}/model" for dataset, name in study_runs()],
        *[f"{RUNS}/samples/{dataset}/{name}" for dataset, name in study_runs()],
        *peft_metric_files(),
        f"{RESULTS}/difftune_peft.csv",
        f"{RESULTS}/tables/difftune_peft.md",
        *[path for knob in ABLATION_KNOBS for path in ablation_metric_files(knob)],
        *expand(f"{RESULTS}/ablation_{{knob}}.csv", knob=ABLATION_KNOBS),
        *expand(f"{RESULTS}/figures/ablation_{{knob}}.png", knob=ABLATION_KNOBS),
        *([*component_metric_files(), f"{RESULTS}/ablation_components.csv",
           f"{RESULTS}/tables/ablation_components.md"] if ABLATION_COMPONENTS else []),
    ]
