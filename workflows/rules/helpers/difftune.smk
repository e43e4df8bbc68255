# Helpers of the Diff-Tuning comparison and the chain-of-forgetting curve (workflows/rules/difftune.smk). Run names
# (method[+peft][@key=value]) are parsed by difftune.variants, torch-free like difftune.config.
from difftune.config import METHODS, FineTuneConfig
from difftune.study_dataset import study_dataset
from difftune.variants import parse_variant
from tunebench.config import ConfigError

DIFFTUNE = config["difftune"]
# The scale's fine-tuning length (settings.difftune.train.steps): a run name's @steps=N equal to it names the plain run.
FINETUNE_STEPS = resolve(SCALE, cls=FineTuneConfig).train.steps


def pick_study_dataset():
    """The dataset of the single-dataset studies (forgetting curve, ablations, ControlNet): the config's rule
    (difftune.study_dataset) applied to the registry, never to results."""
    try:
        return study_dataset(DIFFTUNE["study_dataset"], DIFFTUNE["datasets"])
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


STUDY_DATASET = pick_study_dataset()
FORGETTING = DIFFTUNE["forgetting"]
# Optional: the smoke config leaves the ablations out (its test only plans them) to keep the CI run short.
ABLATIONS = DIFFTUNE.get("ablations")
ABLATION_KNOBS = ("tau", "retention_weight", "retention_ratio", "retention_set") if ABLATIONS else ()
# The objective's two halves on their own (difftune.ablations.components), beside full_ft and diff_tuning: a table.
ABLATION_COMPONENTS = ABLATIONS.get("components", []) if ABLATIONS else []
# Optional: the fine-tuning-length study (target regime); the paper scale fine-tunes 24k steps and leaves it out.
REGIME = DIFFTUNE.get("regime")
# Result files of FID rows: the main comparison, the PEFT table, the seed replicates and one experiment per ablation
# knob.
FID_EXPERIMENT_PATTERN = "|".join(["difftune_main", "difftune_peft", "difftune_seeds", "difftune_regime",
                                   *(f"ablation_{knob}" for knob in ABLATION_KNOBS), "ablation_components"])
# The FID of the comparison: Inception at paper scale, the locally trained feature network otherwise.
FID_METRIC = "fid_inception" if PAPER_SCALE else "fid_local"


def fid_samples_seeds():
    """Seeds of the images sampled per fine-tuned model for FID (one image per seed)."""
    return f"0-{DIFFTUNE['fid_samples'] - 1}"


def sampling_overrides():
    """--set flags of the sampling protocol shared by every FID sample set."""
    return f"--set sample.steps={DIFFTUNE['sample_steps']} --set sample.guidance_scale={DIFFTUNE['guidance']}"


def get_retention(wildcards):
    """The retention set a run replays: generated (the method) or real source images; none for full fine-tuning."""
    variant = parse_variant(wildcards.method)
    if not METHODS[variant.method].retention:
        return []
    return [f"{RUNS}/retention-source" if variant.retention_kind == "source" else f"{RUNS}/retention"]


def start_run(variant):
    """The run a run of @steps=N continues (difftune.finetune --start-from): the same run at the longest shorter
    length among the scale's own and the fine-tuning-length study's (difftune.regime.steps); None for a run of the
    scale's length or one with no shorter length."""
    if variant.steps is None:
        return None
    lengths = [FINETUNE_STEPS, *(REGIME["steps"] if REGIME else [])]
    shorter = [steps for steps in lengths if steps < variant.steps]
    if not shorter:
        return None
    return variant.with_steps(max(shorter)).plain(DIFFTUNE["retention_n"], FINETUNE_STEPS)


def get_start_summary(wildcards):
    """The summary of the run this one continues (so it runs after it), or nothing."""
    start = start_run(parse_variant(wildcards.method))
    return [] if start is None else [f"{RUNS}/finetune/{wildcards.dataset}/{start.name}/summary.json"]


def start_flag(wildcards, input):
    """--start-from: the continued run's last checkpoint (its length), kept beside its model (never a rule output)."""
    start = start_run(parse_variant(wildcards.method))
    if start is None:
        return ""
    steps = start.steps or FINETUNE_STEPS
    return f"--start-from {Path(input.start[0]).parent}/checkpoints/checkpoint-{steps:07d}"


def retention_flag(wildcards, input):
    """The fine-tuning CLI's --retention of that set."""
    return f"--retention {input.retention}" if input.retention else ""


def finetune_variant_flags(wildcards):
    """The fine-tuning CLI's flags of a run name (difftune.variants): method, PEFT method, ablated key."""
    variant = parse_variant(wildcards.method)
    flags = ["--method", variant.method] + (["--peft", variant.peft] if variant.peft != "none" else [])
    return " ".join(flags + variant.set_flags())


def model_run(wildcards):
    """The run whose model a result row scores: the row's own, or the plain run when the override is a default."""
    return parse_variant(wildcards.method).plain(DIFFTUNE["retention_n"], FINETUNE_STEPS).name


def get_scored_samples(wildcards):
    """The FID samples of a result row: those of the run whose model it scores (model_run)."""
    return f"{RUNS}/samples/{wildcards.dataset}/{model_run(wildcards)}"


def difftune_metric_files():
    """One results CSV per (dataset, method) of the main Diff-Tuning comparison."""
    return expand(f"{RUNS}/metrics/difftune_main/{{dataset}}/{{method}}.csv", dataset=DIFFTUNE["datasets"],
                  method=DIFFTUNE["methods"])


def difftune_outputs():
    """Every product of the main comparison and the forgetting curve, intermediates included."""
    pairs = dict(dataset=DIFFTUNE["datasets"], method=DIFFTUNE["methods"])
    return [
        *expand(f"{RUNS}/fid-refs/{{dataset}}", dataset=DIFFTUNE["datasets"]),
        f"{RUNS}/retention",
        *expand(f"{RUNS}/finetune/{{dataset}}/{{method}}/model", **pairs),
        *expand(f"{RUNS}/samples/{{dataset}}/{{method}}", **pairs),
        *difftune_metric_files(),
        f"{RESULTS}/difftune_main.csv",
        f"{RESULTS}/tables/difftune_main.md",
        f"{RESULTS}/forgetting.csv",
        f"{RESULTS}/figures/forgetting.png",
    ]
