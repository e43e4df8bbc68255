# Helpers of DEFT on image inverse problems (workflows/rules/deft.smk). Which baselines run on which task is config
# (deft.task_baselines), not decided here: building a task's operator needs torch, and planning imports none.
# tests/test_workflow_plan.py checks each list against deft.baselines.supports on the task's operator.

DEFT = config["deft"]
# The frozen unconditional model of DEFT: pinned (mini) or trained by the DAG from the source model (smoke). At paper
# scale, ADM ImageNet-256 as a diffusers folder: converted by rule convert_adm from paper.adm_checkpoint when that is
# set (it takes precedence; paper.deft_backbone is then not read), else the folder paper.deft_backbone.
ADM_CHECKPOINT = PAPER.get("adm_checkpoint") if PAPER_SCALE else None
ADM_BACKBONE = f"{RUNS}/adm_backbone/model"
if PAPER_SCALE:
    DEFT_BACKBONE = ADM_BACKBONE if paper_backbone_key() == "adm_checkpoint" else PAPER["deft_backbone"]
else:
    DEFT_BACKBONE = asset("deft_backbone")
DEFT_TASK_PATTERN = "|".join(DEFT["tasks"])
DEFT_METHOD_PATTERN = "|".join(["deft", "amortised", *DEFT["baselines"]])


def check_deft_baselines():
    """deft.task_baselines has an entry for every task of deft.tasks, naming only baselines of deft.baselines; the
    amortised baseline's tasks (deft.amortised) are tasks of deft.tasks.

    Entries of other tasks are ignored: Snakemake merges a --configfile into the Snakefile's default (mini) config
    key by key, so a smoke run also sees the mini entries of tasks it does not run.
    """
    missing = [task for task in DEFT["tasks"] if task not in DEFT["task_baselines"]]
    if missing:
        raise WorkflowError(f"config key 'deft.task_baselines' has no entry for {missing} (tasks of deft.tasks); "
                            "list the baselines that can solve each")
    for task in DEFT["tasks"]:
        unknown = [name for name in DEFT["task_baselines"][task] if name not in DEFT["baselines"]]
        if unknown:
            raise WorkflowError(f"config key 'deft.task_baselines.{task}': {unknown} not in deft.baselines "
                                f"{DEFT['baselines']}")
    # The amortised comparison sets the amortised model beside DEFT's head, which is trained for deft.tasks only.
    unknown = [task for task in DEFT["amortised"] if task not in DEFT["tasks"]]
    if unknown:
        raise WorkflowError(f"config key 'deft.amortised': {unknown} not in deft.tasks {DEFT['tasks']}")


check_deft_baselines()


def adm_checkpoint(wildcards):
    """paper.adm_checkpoint, the file that rule convert_adm converts (it runs only when that key is set)."""
    if not ADM_CHECKPOINT:
        raise WorkflowError("rule convert_adm converts config key 'paper.adm_checkpoint' (paper scale), which is not set")
    return ADM_CHECKPOINT


def adm_config_flags():
    """python -m deft.convert_adm's flags of config paper.adm_config (an ADM other than 256x256_diffusion_uncond)."""
    adm = PAPER.get("adm_config", {}) if PAPER_SCALE else {}
    return " ".join(f"--{key.replace('_', '-')} {value}" for key, value in adm.items())


def deft_data_flag():
    """The DEFT CLIs' data.root override at paper scale (mini/smoke images come from installed packages)."""
    return f"--set data.root={PAPER['deft_data_root']}" if PAPER_SCALE else ""


def deft_trained_folder(task, method):
    """Where the model a method samples from is trained: DEFT's head, the amortised model (None for baselines)."""
    return {"deft": f"{RUNS}/deft/{task}/train", "amortised": f"{RUNS}/deft/{task}/amortised-train"}.get(method)


def get_deft_trained(wildcards):
    """The trained model a reconstruction needs (DEFT's head folder, the amortised model folder; none otherwise)."""
    folder = deft_trained_folder(wildcards.task, wildcards.method)
    return [f"{folder}/{'head' if wildcards.method == 'deft' else 'model'}"] if folder else []


def deft_trained_flag(wildcards, input):
    """`deft.reconstruct`'s flag for that model."""
    if not input.trained:
        return ""
    return f"{'--head' if wildcards.method == 'deft' else '--conditional'} {input.trained}"


def get_deft_train_summary(wildcards):
    """The training summary whose stats give the method's training time (DEFT, amortised)."""
    folder = deft_trained_folder(wildcards.task, wildcards.method)
    return [f"{folder}/summary.json"] if folder else []


def deft_pairs():
    """(task, method) of the main comparison: DEFT and the baselines configured for each task."""
    return [(task, method) for task in DEFT["tasks"] for method in ["deft", *DEFT["task_baselines"][task]]]


def deft_metric_files(pairs):
    """The results CSV of each (task, method) in `pairs`."""
    return [f"{RUNS}/metrics/deft_main/{task}/{method}.csv" for task, method in pairs]


def deft_per_image_files(pairs):
    """The per-image score CSV of each (task, method) in `pairs`, beside its results CSV."""
    return [f"{RUNS}/metrics/deft_main/{task}/{method}.per_image.csv" for task, method in pairs]


def amortised_pairs():
    """(task, method) of the amortised comparison: the amortised model and DEFT on each task of deft.amortised.
    Its own target (deft_amortised_outputs), so that deft_main.csv is the same whichever tier ran."""
    return [(task, method) for task in DEFT["amortised"] for method in ("amortised", "deft")]


def deft_outputs():
    """Every product of DEFT and its baselines: heads, reconstructions, results, the paired comparison; the backbone
    when the DAG builds or converts it."""
    products = [
        *expand(f"{RUNS}/deft/{{task}}/train/head", task=DEFT["tasks"]),
        *[f"{RUNS}/deft/{task}/{method}/recon.npz" for task, method in deft_pairs()],
        *deft_metric_files(deft_pairs()),
        f"{RESULTS}/deft_main.csv",
        f"{RESULTS}/tables/deft_main.md",
        f"{RESULTS}/deft_paired.csv",
        f"{RESULTS}/tables/deft_paired.md",
    ]
    if built_by_dag("deft_backbone") or ADM_CHECKPOINT:
        products.append(DEFT_BACKBONE)
    return products


def deft_amortised_outputs():
    """Every product of the amortised comparison: the amortised models, their reconstructions, results, table (none
    without tasks in deft.amortised, as at paper scale)."""
    if not DEFT["amortised"]:
        return []
    return [
        *expand(f"{RUNS}/deft/{{task}}/amortised-train/model", task=DEFT["amortised"]),
        *[f"{RUNS}/deft/{task}/amortised/recon.npz" for task in DEFT["amortised"]],
        *deft_metric_files(amortised_pairs()),
        f"{RESULTS}/deft_amortised.csv",
        f"{RESULTS}/tables/deft_amortised.md",
    ]
