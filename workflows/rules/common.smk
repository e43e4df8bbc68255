# What every study shares: config validation, the scale, paths, the CLIs' interpreter and launcher, and the flags of
# paper-scale local files. Each study's own helpers live in workflows/rules/helpers/STUDY.smk.
#
# Planning (snakemake -n) imports no torch: helpers read the config and torch-free modules only (tunebench.config,
# difftune.config/variants, deft.protein.config); tests/test_workflow_plan.py checks it.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.settings.types import DeploymentMethod
from snakemake.utils import validate

from tunebench.config import REHEARSAL_ENV, resolve
from tunebench.pinned_assets import ASSETS, AssetError, pinned_dir, verify_asset


validate(config, "../schemas/config.schema.yaml", set_default=True)

SCALE = config["scale"]
# A rehearsal: every job (and the planning below) applies the rehearsal file's settings and marks its results rows
# (tunebench.config.REHEARSAL_ENV); the CLIs read the scale's settings by name, so the merged config cannot reach them.
if config["rehearsal"]:
    os.environ[REHEARSAL_ENV] = str(Path(config["rehearsal"]).resolve())
PAPER_SCALE = SCALE == "paper"
RUNS = f"runs/{SCALE}"
RESULTS = f"results/{SCALE}"
# The DiT runs' image side: the scale's core settings (workflows/config/SCALE.yaml, read by tunebench.config).
RESOLUTION = resolve(SCALE).data.resolution
# The interpreter of the CLIs: under --sw-deployment-method conda, the rule's environment's `python` (Snakemake
# activates it for the job); otherwise the one running Snakemake (the suite's venv), not whatever is on PATH.
CONDA_DEPLOYMENT = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
PYTHON = "python" if CONDA_DEPLOYMENT else sys.executable
# The conda environment of every rule (relative to workflows/rules/), for --sw-deployment-method conda.
CONDA_ENV = "../envs/tunebench.yaml"
PAPER = config.get("paper", {})
# Threads of every training, sampling and scoring job (config job_threads; the asset builds use one).
JOB_THREADS = config["job_threads"]
# Seeds (Diff-Tuning) or test images (DEFT) per picture grid of the report: the first ones of every sample file, so
# that each column shows one seed in every row (sample k depends only on seed k).
PICTURE_COUNT = 16
# The pre-trained models and the feature network behind fid_local. Paper scale: local copies of the downloaded
# DiT-XL/2, ADM and Inception (config paper.*). Mini: the folders pinned under assets/mini/ (config `assets:
# pinned`, or per asset), checked against their manifests while planning, so every machine computes with the same
# weights. Smoke: built by the DAG (`assets: build`). The build rules always write BUILT_ASSETS; the `assets` target
# (workflows/rules/assets.smk) rebuilds them at any scale and compares them with the pins.
BUILT_ASSETS = {"source_dit": f"{RUNS}/source/model", "deft_backbone": f"{RUNS}/uncond/model",
                "feature_net": f"{RUNS}/features", "protein_prior": f"{RUNS}/protein/prior/model"}


def pinned_asset_names(setting):
    """The assets read from their pins, from config `assets`: 'pinned' (all), 'build' (none) or a mapping of asset
    names to 'pinned' or 'build' (the schema checks the values; a name left out is built)."""
    if PAPER_SCALE:
        return set()
    if isinstance(setting, str):
        return set(ASSETS) if setting == "pinned" else set()
    unknown = sorted(set(setting) - set(ASSETS))
    if unknown:
        raise WorkflowError(f"config key 'assets' names {unknown}, which are not assets; use {sorted(ASSETS)}")
    return {name for name, source in setting.items() if source == "pinned"}


PINNED_ASSETS = pinned_asset_names(config["assets"])


def asset(name):
    """The folder the DAG reads asset `name` from: its pin (assets/SCALE/NAME) or the DAG's own build."""
    return str(pinned_dir(SCALE, name, root="assets")) if name in PINNED_ASSETS else BUILT_ASSETS[name]


def built_by_dag(name):
    """Whether the main targets build asset `name` (not pinned, not a paper-scale download)."""
    return not PAPER_SCALE and name not in PINNED_ASSETS


def check_pinned_assets():
    """Stop before anything runs when a pinned file differs from its manifest, naming the file."""
    for name in sorted(PINNED_ASSETS):
        try:
            verify_asset(asset(name))
        except AssetError as err:
            raise WorkflowError(f"pinned asset {name}: {err}") from None


check_pinned_assets()
PRETRAINED = PAPER.get("pretrained") if PAPER_SCALE else asset("source_dit")
# GPUs of each data-parallel job at paper scale (the rules that launch() their CLI); one CPU job otherwise.
GPUS_PER_JOB = PAPER.get("gpus_per_job", 1) if PAPER_SCALE else 1


def paper_backbone_key():
    """The paper key DEFT's backbone comes from: `adm_checkpoint` when set (rule convert_adm converts it, and
    `deft_backbone` is not read), else `deft_backbone` (a ready diffusers folder)."""
    return "adm_checkpoint" if PAPER.get("adm_checkpoint") else "deft_backbone"


def check_paper_files():
    """Stop at once, naming the key, when a paper-scale local file is missing (nothing is downloaded)."""
    hints = {
        "pretrained": "huggingface-cli download facebook/DiT-XL-2-256 --local-dir PATH (on a machine with network)",
        "data_root": "one ImageFolder per dataset, DATA_ROOT/NAME/{train,test}/CLASS/* (see docs/datasets.md)",
        "inception_weights": "torch-fidelity's weights-inception-2015-12-05-6726825d.pth (see docs/fid.md)",
        "deft_backbone": "the unconditional ADM ImageNet-256 model as a diffusers UNet2DModel folder (python -m "
                         "deft.convert_adm), or set paper.adm_checkpoint instead (docs/deft.md)",
        "adm_checkpoint": "guided-diffusion's 256x256_diffusion_uncond.pt, or unset it and give paper.deft_backbone "
                          "(docs/deft.md)",
        "deft_data_root": "ImageNet validation images as DEFT_DATA_ROOT/{train,test}/CLASS/* (docs/deft.md)",
        "protein_root": "a folder of PDB files, e.g. SCOPe 2.08 40% domains (docs/protein.md)",
    }
    unused = {"deft_backbone", "adm_checkpoint"} - {paper_backbone_key()}
    if paper_backbone_key() not in PAPER:
        raise WorkflowError("config key 'paper.deft_backbone' or 'paper.adm_checkpoint': set one; DEFT's backbone "
                            f"is {hints['deft_backbone']}")
    for key, hint in hints.items():
        if key not in unused and not Path(PAPER[key]).exists():
            raise WorkflowError(f"config key 'paper.{key}': {PAPER[key]} does not exist; provide {hint}")


if PAPER_SCALE:
    check_paper_files()


def launch(module):
    """The command that starts a data-parallel CLI (retention set, fine-tuning, FID samples) - `accelerate launch`
    over the job's GPUs at paper scale (one process per GPU; the CLIs shard the batch or the seeds and rank 0
    writes), `python -m` on one CPU job otherwise."""
    if not PAPER_SCALE:
        return f"{PYTHON} -m {module}"
    multi_gpu = "--multi_gpu " if GPUS_PER_JOB > 1 else ""
    return (f"{PYTHON} -m accelerate.commands.launch {multi_gpu}--num_processes {GPUS_PER_JOB} --num_machines 1 "
            f"--mixed_precision no --dynamo_backend no -m {module}")


def vae_flag():
    """--set model.vae: at paper scale the VAE is the pre-trained pipeline folder's vae/ (DiT-XL-2-256 ships it)."""
    return f"--set model.vae={PRETRAINED}" if PAPER_SCALE else ""


def dataset_root_flag(wildcards):
    """--root of a paper-scale dataset's folder (mini datasets are built from installed packages)."""
    return f"--root {PAPER['data_root']}/{wildcards.dataset}" if PAPER_SCALE else ""


def finetune_data_flag(wildcards):
    """The training CLIs' data.root override for a paper-scale dataset (fine-tuning, ControlNet)."""
    return f"--set data.root={PAPER['data_root']}/{wildcards.dataset}" if PAPER_SCALE else ""


def train_summary_flag(wildcards, input):
    """The evaluation CLIs' --train-summary of a trained method (its training time), none for training-free ones."""
    return f"--train-summary {input.train_summary}" if input.train_summary else ""
