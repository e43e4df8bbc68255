# Helpers for the workflow: config validation, paths, and the interpreter that runs the CLIs.
import sys

from snakemake.utils import validate

from difftune.config import METHODS
from tunebench.config import SCALES


validate(config, "../schemas/config.schema.yaml", set_default=True)

SCALE = config["scale"]
RUNS = f"runs/{SCALE}"
RESULTS = f"results/{SCALE}"
RESOLUTION = SCALES[SCALE]["data"]["resolution"]
DIFFTUNE = config["difftune"]
# The CLIs run under the interpreter that runs Snakemake (the suite's venv), not whatever `python` is on PATH.
PYTHON = sys.executable
# The conda environment of every rule (relative to workflows/rules/), for --sw-deployment-method conda.
CONDA_ENV = "../envs/tunebench.yaml"


def fid_samples_seeds():
    """Seeds of the images sampled per fine-tuned model for FID (one image per seed)."""
    return f"0-{DIFFTUNE['fid_samples'] - 1}"


def sampling_overrides():
    """--set flags of the sampling protocol shared by every FID sample set."""
    return f"--set sample.steps={DIFFTUNE['sample_steps']} --set sample.guidance_scale={DIFFTUNE['guidance']}"


def retention_input(wildcards):
    """The retention set, for the methods that replay one (none for full fine-tuning)."""
    return [f"{RUNS}/retention"] if METHODS[wildcards.method].retention else []


def difftune_metric_files():
    """One results CSV per (dataset, method) of the main Diff-Tuning comparison."""
    return expand(f"{RUNS}/metrics/difftune_main/{{dataset}}/{{method}}.csv", dataset=DIFFTUNE["datasets"],
                  method=DIFFTUNE["methods"])


def final_outputs():
    """Every file the DAG produces for the configured scale."""
    return [
        f"{RESULTS}/pretrain/source_grid.png",
        f"{RESULTS}/pretrain/summary.json",
        f"{RESULTS}/difftune_main.csv",
        f"{RESULTS}/tables/difftune_main.md",
        f"{RESULTS}/forgetting.csv",
        f"{RESULTS}/figures/forgetting.png",
    ]
