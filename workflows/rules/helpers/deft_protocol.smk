# Helpers of the `deft_protocol` target (workflows/rules/deft_protocol.smk): the switched runs that config
# `deft_protocol` lists (docs/deft.md, "Deviations from the official code"), and the default run each is compared
# with, read from the main study (workflows/rules/deft.smk) wherever it makes that run with the same settings.
import re
import shlex
from dataclasses import dataclass

from deft.config import DeftConfig
from deft.method_names import BASELINE_NAMES
from deft.operators.task_settings import TASK_PRESETS
from deft.protocol_runs import run_name, switch_text
from tunebench.config import ConfigError, parse_set, resolve, to_dict

PROTOCOL = config["deft_protocol"]
# The label of a default run the main study does not make (a folder name; no switch may take it).
DEFAULT_LABEL = "default"
PROTOCOL_EXPERIMENT = "deft_protocol"


@dataclass(frozen=True)
class ProtocolRun:
    """One switched run: `method` on `task` under `overrides` (--set KEY=VALUE strings), in runs/SCALE/deft_protocol/
    TASK/LABEL, its rows under run name `name` (deft.protocol_runs); compared with the default run of `method` on
    `default_task` (another task for a task switch)."""

    task: str
    label: str
    method: str
    overrides: tuple[str, ...]
    default_task: str
    name: str


def entry_runs(index, entry):
    """The switched runs of config entry `index`; a WorkflowError naming the entry when it cannot be run as meant."""
    where = f"config key 'deft_protocol' entry {index} (row {entry['row']}, {entry['task']}, {entry['label']})"
    overrides = tuple(f"{key}={value}" for key, value in entry.get("set", {}).items())
    task = entry.get("switched_task") or entry["task"]
    if bool(overrides) == ("switched_task" in entry):
        raise WorkflowError(f"{where}: give either 'set' (the --set overrides of the switch) or 'switched_task' "
                            "(the task solved instead), not both or neither")
    if task == entry["task"] and not overrides:
        raise WorkflowError(f"{where}: 'switched_task' is the entry's own task; a switch must change something")
    if entry["label"] == DEFAULT_LABEL:
        raise WorkflowError(f"{where}: the label {DEFAULT_LABEL!r} names the default runs; choose another")
    # head.* changes only what DEFT trains, baselines.* only the baselines: elsewhere the run would be the default.
    for method in entry["methods"]:
        misplaced = [item for item in overrides
                     if item.startswith("head." if method != "deft" else "baselines.")]
        if misplaced:
            raise WorkflowError(f"{where}: {misplaced} do not change method {method}; list it in another entry")
    preset = {"task": {"name": task, **TASK_PRESETS[task]}}
    try:
        switched = resolve(SCALE, preset, parse_set(list(overrides)), cls=DeftConfig)
    except ConfigError as err:
        raise WorkflowError(f"{where}: {err}") from None
    if overrides and to_dict(switched) == to_dict(resolve(SCALE, preset, cls=DeftConfig)):
        raise WorkflowError(f"{where}: {list(overrides)} are the default settings; a switch must change one")
    switch = switch_text(entry.get("set", {}), entry.get("switched_task"))
    return [ProtocolRun(task, entry["label"], method, overrides, entry["task"], run_name(method, entry["row"], switch))
            for method in entry["methods"]]


def protocol_runs():
    """Every switched run of config `deft_protocol`, checked; two entries of one task and label are an error (they
    would share a folder)."""
    folders = [(entry.get("switched_task") or entry["task"], entry["label"]) for entry in PROTOCOL]
    repeated = sorted({folder for folder in folders if folders.count(folder) > 1})
    if repeated:
        raise WorkflowError(f"config key 'deft_protocol': two entries run task {repeated[0][0]} under label "
                            f"{repeated[0][1]!r}; give each switch of a task its own label")
    return [run for index, entry in enumerate(PROTOCOL) for run in entry_runs(index, entry)]


PROTOCOL_RUNS = protocol_runs()
RUNS_BY_FOLDER = {(run.task, run.label, run.method): run for run in PROTOCOL_RUNS}
# The --set overrides of each switch's folder (task, label); a default run has none.
FOLDER_OVERRIDES = {(run.task, run.label): run.overrides for run in PROTOCOL_RUNS}
PROTOCOL_LABELS = sorted({DEFAULT_LABEL, *(run.label for run in PROTOCOL_RUNS)})
PROTOCOL_LABEL_PATTERN = "|".join(re.escape(label) for label in PROTOCOL_LABELS)
PROTOCOL_METHOD_PATTERN = "|".join(["deft", *BASELINE_NAMES])


def protocol_defaults():
    """(task, method) of every default run a switched run is compared with, in first-use order."""
    return list(dict.fromkeys((run.default_task, run.method) for run in PROTOCOL_RUNS))


def made_by_main_study(task, method):
    """Whether the main DEFT study (deft_pairs) makes the default run of `method` on `task`."""
    return task in DEFT["tasks"] and method in ["deft", *DEFT["task_baselines"][task]]


def protocol_folder(task, label):
    """The runs of one switch of a task (or its default runs the main study does not make)."""
    return f"{RUNS}/deft_protocol/{task}/{label}"


def protocol_metrics(task, label, method):
    """The results CSV of one run of the protocol target."""
    return f"{RUNS}/metrics/deft_protocol/{task}/{label}/{method}.csv"


def protocol_jobs():
    """(task, label, method) of every run the protocol target makes: the switched runs and the defaults the main
    study does not make."""
    defaults = [(task, DEFAULT_LABEL, method) for task, method in protocol_defaults()
                if not made_by_main_study(task, method)]
    return defaults + list(RUNS_BY_FOLDER)


def protocol_metric_files():
    """The results CSVs of the table: each default's (the main study's where it makes the run) and each switched
    run's."""
    defaults = [deft_metric_files([(task, method)])[0] if made_by_main_study(task, method)
                else protocol_metrics(task, DEFAULT_LABEL, method) for task, method in protocol_defaults()]
    return defaults + [protocol_metrics(run.task, run.label, run.method) for run in PROTOCOL_RUNS]


def protocol_per_image_files():
    """The per-image scores of every run the table compares, beside protocol_metric_files' results CSVs."""
    return [path.removesuffix(".csv") + ".per_image.csv" for path in protocol_metric_files()]


def protocol_overrides(wildcards):
    """The switch's --set flags (none for a default run), for training, sampling and the head check alike."""
    overrides = FOLDER_OVERRIDES.get((wildcards.task, wildcards.label), ())
    return " ".join(f"--set {shlex.quote(item)}" for item in overrides)


def get_protocol_head(wildcards):
    """DEFT's head trained for the run (none for a baseline)."""
    return [f"{protocol_folder(wildcards.task, wildcards.label)}/train/head"] if wildcards.method == "deft" else []


def get_protocol_train_summary(wildcards):
    """The training summary whose stats give DEFT's training time (none for a baseline)."""
    return [f"{protocol_folder(wildcards.task, wildcards.label)}/train/summary.json"] if (
        wildcards.method == "deft") else []


def protocol_head_flag(wildcards, input):
    """`deft.reconstruct`'s --head for DEFT."""
    return f"--head {input.trained}" if input.trained else ""


def protocol_row_flags(wildcards):
    """`deft.evaluate`'s --method and --dataset of a switched run: its run name, and the task of its default."""
    if wildcards.label == DEFAULT_LABEL:
        return ""
    run = RUNS_BY_FOLDER[(wildcards.task, wildcards.label, wildcards.method)]
    return f"--method {shlex.quote(run.name)} --dataset {run.default_task}"


def deft_protocol_outputs():
    """Every product of the protocol target: its heads, reconstructions and results, the merged CSV and its table
    (none without switches)."""
    if not PROTOCOL_RUNS:
        return []
    jobs = protocol_jobs()
    return [
        *dict.fromkeys(f"{protocol_folder(task, label)}/train/head" for task, label, method in jobs
                       if method == "deft"),
        *[f"{protocol_folder(task, label)}/{method}/recon.npz" for task, label, method in jobs],
        *protocol_metric_files(),
        *protocol_per_image_files(),
        f"{RUNS}/metrics/deft_protocol_paired.csv",
        f"{RESULTS}/deft_protocol.csv",
        f"{RESULTS}/tables/deft_protocol.md",
    ]
