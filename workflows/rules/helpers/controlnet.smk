# Helpers of ControlNet convergence (workflows/rules/controlnet.smk): every branch trains on the frozen pre-trained
# model (PRETRAINED) with the study dataset (STUDY_DATASET); the arms differ only in the objective.
from difftune.config import METHODS
from difftune.controlnet.config import OBJECTIVES

CONTROLNET = config["controlnet"]


def check_controlnet():
    """The objectives must be those the training CLI knows (difftune.controlnet.config.OBJECTIVES)."""
    unknown = sorted(set(CONTROLNET["objectives"]) - set(OBJECTIVES))
    if unknown:
        raise WorkflowError(f"config key 'controlnet.objectives': {unknown} are not objectives; use "
                            f"{list(OBJECTIVES)}")


check_controlnet()


def get_control_retention(wildcards):
    """The retention set of an objective that replays one: the main comparison's, sampled from the same frozen base;
    none for the standard objective."""
    return [f"{RUNS}/retention"] if METHODS[OBJECTIVES[wildcards.objective]].retention else []


def controlnet_summaries():
    """The summary.json of every ControlNet run (condition × objective × seed)."""
    return expand(f"{RUNS}/controlnet/{STUDY_DATASET}/{{condition}}/{{objective}}/seed{{seed}}/summary.json",
                  condition=CONTROLNET["conditions"], objective=CONTROLNET["objectives"], seed=CONTROLNET["seeds"])


def controlnet_run_dirs(wildcards, input):
    """The run folders of those summaries, as `difftune.controlnet.summary` takes them."""
    return " ".join(str(Path(path).parent) for path in input)


def controlnet_picture_summaries(wildcards):
    """The runs of a condition's picture grid: each objective's, at the first training seed."""
    seed = CONTROLNET["seeds"][0]
    return expand(f"{RUNS}/controlnet/{STUDY_DATASET}/{wildcards.condition}/{{objective}}/seed{seed}/summary.json",
                  objective=CONTROLNET["objectives"])


def controlnet_picture_flags(wildcards, input):
    """--runs OBJECTIVE=FOLDER of a condition's picture grid, in the objectives' order."""
    return " ".join(f"{objective}={Path(path).parent}" for objective, path in zip(CONTROLNET["objectives"],
                                                                                  input.runs))


def controlnet_outputs():
    """Every ControlNet branch, the fidelity curves, the table, the figure and each condition's picture grid."""
    return [
        *[str(Path(path).parent / "controlnet") for path in controlnet_summaries()],
        f"{RESULTS}/controlnet_fidelity.csv",
        f"{RESULTS}/controlnet.csv",
        f"{RESULTS}/tables/controlnet.md",
        f"{RESULTS}/figures/controlnet.png",
        *expand(f"{RESULTS}/figures/controlnet_{{condition}}.png", condition=CONTROLNET["conditions"]),
    ]
