# Helpers of the fine-tuning-length study (workflows/rules/difftune_regime.smk): its datasets, run names and products.
from difftune.study_dataset import study_datasets
from difftune.variants import Variant


def check_regime():
    """The study's lengths must be longer than the scale's own (each continues the next shorter one), its seeds at
    least 2; returns its datasets, picked by the config's rule from difftune.datasets before any result exists."""
    if not REGIME:
        return []
    short = [steps for steps in REGIME["steps"] if steps < FINETUNE_STEPS]
    if short or len(set(REGIME["steps"])) != len(REGIME["steps"]):
        raise WorkflowError(f"config key 'difftune.regime.steps' is {REGIME['steps']}: give distinct lengths of at "
                            f"least the scale's fine-tuning length ({FINETUNE_STEPS}, settings.difftune.train.steps)")
    picked = REGIME["datasets"]
    try:
        return study_datasets(picked["rule"], DIFFTUNE["datasets"], picked["count"], "difftune.regime.datasets.rule")
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


REGIME_DATASETS = check_regime()


def regime_runs():
    """(dataset, run name) of every run of the study: each method × training seed × length, named with @steps=N
    (the scale's length included) so the rows say how long each model trained."""
    return [(dataset, Variant(method, key="seed", value=seed, steps=steps).plain(DIFFTUNE["retention_n"]).name)
            for dataset in REGIME_DATASETS for method in DIFFTUNE["methods"] for seed in REGIME["seeds"]
            for steps in sorted({FINETUNE_STEPS, *REGIME["steps"]})]


def regime_metric_files():
    """One FID results CSV per run of the study."""
    return [f"{RUNS}/metrics/difftune_regime/{dataset}/{name}.csv" for dataset, name in regime_runs()]


def get_regime_outputs(wildcards):
    """Every product of the study, the models it trains and their samples included (the scale's length: the main
    comparison's and the seed replicates' runs)."""
    if not REGIME:
        raise WorkflowError("target regime: the config has no 'difftune.regime' section (the mini config has one)")
    models = sorted({(dataset, parse_variant(name).plain(DIFFTUNE["retention_n"], FINETUNE_STEPS).name)
                     for dataset, name in regime_runs()})
    return [
        *[f"{RUNS}/finetune/{dataset}/{name}/model" for dataset, name in models],
        *[f"{RUNS}/samples/{dataset}/{name}" for dataset, name in models],
        *regime_metric_files(),
        f"{RESULTS}/difftune_regime.csv",
        f"{RESULTS}/tables/difftune_regime.md",
        f"{RESULTS}/figures/difftune_regime.png",
        *claims_outputs("regime"),
    ]
