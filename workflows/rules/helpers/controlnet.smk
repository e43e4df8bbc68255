# Helpers of ControlNet convergence (workflows/rules/controlnet.smk): the frozen base of each branch and the runs the
# summary compares.
from difftune.variants import parse_variant

CONTROLNET = config["controlnet"]


def check_controlnet():
    """The ControlNet dataset must be a main dataset: its Diff-Tuning base is that dataset's main run."""
    unknown = sorted({CONTROLNET["dataset"]} - set(DIFFTUNE["datasets"]))
    if unknown:
        raise WorkflowError(f"config key 'controlnet.dataset': {unknown} not in difftune.datasets "
                            f"{DIFFTUNE['datasets']}")


check_controlnet()


def get_controlnet_base(wildcards):
    """The frozen model of a ControlNet: 'pretrained' is the source model, any other base is the fine-tuned model of
    that run name on the ControlNet dataset."""
    if wildcards.base == "pretrained":
        return PRETRAINED
    return f"{RUNS}/finetune/{wildcards.dataset}/{parse_variant(wildcards.base).name}/model"


def controlnet_summaries():
    """The summary.json of every ControlNet run (condition × base)."""
    return expand(f"{RUNS}/controlnet/{CONTROLNET['dataset']}/{{condition}}/{{base}}/summary.json",
                  condition=CONTROLNET["conditions"], base=CONTROLNET["bases"])


def controlnet_run_dirs(wildcards, input):
    """The run folders of those summaries, as `difftune.controlnet.summary` takes them."""
    return " ".join(str(Path(path).parent) for path in input)


def controlnet_outputs():
    """Every ControlNet branch, the fidelity curves, the table and the figure."""
    return [
        *[str(Path(path).parent / "controlnet") for path in controlnet_summaries()],
        f"{RESULTS}/controlnet_fidelity.csv",
        f"{RESULTS}/controlnet.csv",
        f"{RESULTS}/tables/controlnet.md",
        f"{RESULTS}/figures/controlnet.png",
    ]
