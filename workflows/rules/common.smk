# Helpers for the workflow: config validation, paths, per-scale inputs and flags, and the list of every product.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import torch

from deft.baselines import supports
from deft.protein.models import head_name
from deft.operators.tasks import build_operator, task_config
from difftune.config import METHODS
from difftune.variants import Variant, parse_variant
from tunebench.config import SCALES


validate(config, "../schemas/config.schema.yaml", set_default=True)

SCALE = config["scale"]
PAPER_SCALE = SCALE == "paper"
RUNS = f"runs/{SCALE}"
RESULTS = f"results/{SCALE}"
RESOLUTION = SCALES[SCALE].get("data", {}).get("resolution", 256)
DIFFTUNE = config["difftune"]
# The CLIs run under the interpreter that runs Snakemake (the suite's venv), not whatever `python` is on PATH.
PYTHON = sys.executable
# The conda environment of every rule (relative to workflows/rules/), for --sw-deployment-method conda.
CONDA_ENV = "../envs/tunebench.yaml"
# Paper scale: the pre-trained DiT-XL/2 and the datasets are local folders; mini/smoke train their own source model.
PAPER = config.get("paper", {})
PRETRAINED = PAPER.get("pretrained") if PAPER_SCALE else f"{RUNS}/source/model"
DEFT = config["deft"]
# The frozen unconditional model of DEFT: trained by the DAG from the source model (mini/smoke), a local folder at
# paper scale (e.g. ADM ImageNet-256 converted to diffusers).
DEFT_BACKBONE = PAPER.get("deft_backbone") if PAPER_SCALE else f"{RUNS}/uncond/model"
DEFT_TASK_PATTERN = "|".join(DEFT["tasks"])
DEFT_METHOD_PATTERN = "|".join(["deft", "amortised", *DEFT["baselines"]])
PEFT = DIFFTUNE["peft"]
# Optional: the smoke config leaves the ablations out (its test only plans them) to keep the CI run short.
ABLATIONS = DIFFTUNE.get("ablations")
ABLATION_KNOBS = ("tau", "retention_weight", "retention_ratio", "retention_set") if ABLATIONS else ()
# Result files of FID rows: the main comparison, the PEFT table and one experiment per ablation knob.
FID_EXPERIMENT_PATTERN = "|".join(["difftune_main", "difftune_peft",
                                   *(f"ablation_{knob}" for knob in ABLATION_KNOBS)])
# Paper scale: fine-tuning reads each dataset's VAE posteriors from a cache made once (rule cache_latents).
CACHE_LATENTS = DIFFTUNE["cache_latents"]
CONTROLNET = config["controlnet"]
PROTEIN = config["protein"]
PROTEIN_HEADS = {head_name(fraction): fraction for fraction in PROTEIN["heads"]}
PROTEIN_METHODS = [*PROTEIN["baselines"], *PROTEIN_HEADS]
# GPUs of each data-parallel job at paper scale (the rules that launch() their CLI); one CPU job otherwise.
GPUS_PER_JOB = PAPER.get("gpus_per_job", 1) if PAPER_SCALE else 1
# The FID of the comparison: Inception at paper scale, the locally trained feature network otherwise.
FID_METRIC = "fid_inception" if PAPER_SCALE else "fid_local"


def check_paper_files():
    """Stop at once, naming the key, when a paper-scale local file is missing (nothing is downloaded)."""
    hints = {
        "pretrained": "huggingface-cli download facebook/DiT-XL-2-256 --local-dir PATH (on a machine with network)",
        "data_root": "one ImageFolder per dataset, DATA_ROOT/NAME/{train,test}/CLASS/* (see docs/datasets.md)",
        "inception_weights": "torch-fidelity's weights-inception-2015-12-05-6726825d.pth (see docs/fid.md)",
        "deft_backbone": "the unconditional ADM ImageNet-256 model as a diffusers UNet2DModel folder (docs/deft.md)",
        "deft_data_root": "ImageNet validation images as DEFT_DATA_ROOT/{train,test}/CLASS/* (docs/deft.md)",
        "protein_root": "a folder of PDB files, e.g. SCOPe 2.08 40% domains (docs/protein.md)",
    }
    for key, hint in hints.items():
        if not Path(PAPER[key]).exists():
            raise WorkflowError(f"config key 'paper.{key}': {PAPER[key]} does not exist; provide {hint}")


def check_difftune_studies():
    """The PEFT table and the ablations compare with the main runs: their datasets must be main datasets."""
    for key, datasets in (("difftune.peft.datasets", PEFT["datasets"]),
                          ("difftune.ablations.dataset", [ABLATIONS["dataset"]] if ABLATIONS else []),
                          ("controlnet.dataset", [CONTROLNET["dataset"]])):
        unknown = sorted(set(datasets) - set(DIFFTUNE["datasets"]))
        if unknown:
            raise WorkflowError(f"config key '{key}': {unknown} not in difftune.datasets {DIFFTUNE['datasets']}")
    if not ABLATIONS:
        return
    too_large = [n for n in ABLATIONS["retention_set"] if n != "source" and n > DIFFTUNE["retention_n"]]
    if too_large:
        raise WorkflowError(f"config key 'difftune.ablations.retention_set': sizes {too_large} exceed "
                            f"difftune.retention_n = {DIFFTUNE['retention_n']} (sizes are prefixes of that set)")
    if PAPER_SCALE and "source" in ABLATIONS["retention_set"]:
        raise WorkflowError("config key 'difftune.ablations.retention_set': 'source' needs real ImageNet images, "
                            "which have no dataset entry at paper scale yet; remove it")


def check_latent_cache():
    """A latent cache needs a VAE, which only the paper scale has."""
    if CACHE_LATENTS and not PAPER_SCALE:
        raise WorkflowError(f"config key 'difftune.cache_latents' is true at scale {SCALE}, which trains in pixel "
                            "space (no VAE to cache); set it to false")


if PAPER_SCALE:
    check_paper_files()
check_difftune_studies()
check_latent_cache()


def launch(module):
    """The command that starts a data-parallel CLI (retention set, fine-tuning, FID samples) - `accelerate launch`
    over the job's GPUs at paper scale (one process per GPU; the CLIs shard the batch or the seeds and rank 0
    writes), `python -m` on one CPU job otherwise."""
    if not PAPER_SCALE:
        return f"{PYTHON} -m {module}"
    multi_gpu = "--multi_gpu " if GPUS_PER_JOB > 1 else ""
    return (f"{PYTHON} -m accelerate.commands.launch {multi_gpu}--num_processes {GPUS_PER_JOB} --num_machines 1 "
            f"--mixed_precision no --dynamo_backend no -m {module}")


def fid_samples_seeds():
    """Seeds of the images sampled per fine-tuned model for FID (one image per seed)."""
    return f"0-{DIFFTUNE['fid_samples'] - 1}"


def sampling_overrides():
    """--set flags of the sampling protocol shared by every FID sample set."""
    return f"--set sample.steps={DIFFTUNE['sample_steps']} --set sample.guidance_scale={DIFFTUNE['guidance']}"


def retention_input(wildcards):
    """The retention set a run replays: generated (the method) or real source images; none for full fine-tuning."""
    variant = parse_variant(wildcards.method)
    if not METHODS[variant.method].retention:
        return []
    return [f"{RUNS}/retention-source" if variant.retention_kind == "source" else f"{RUNS}/retention"]


def finetune_variant_flags(wildcards):
    """The fine-tuning CLI's flags of a run name (difftune.variants): method, PEFT method, ablated key."""
    variant = parse_variant(wildcards.method)
    flags = ["--method", variant.method] + (["--peft", variant.peft] if variant.peft != "none" else [])
    return " ".join(flags + variant.set_flags())


def latents_input(wildcards):
    """The latent cache a fine-tuning run reads: its dataset's (difftune.cache_latents), else none. Its age does not
    count (`ancient`): a re-made cache gives the same latents, so it must not rerun the models trained from it."""
    return [ancient(f"{RUNS}/latents/{wildcards.dataset}.safetensors")] if CACHE_LATENTS else []


def latents_flag(wildcards, input):
    """The fine-tuning CLI's data.latents override for that cache."""
    return f"--set data.latents={input.latents}" if input.latents else ""


def model_run(wildcards):
    """The run whose model a result row scores: the row's own, or the plain run when the override is a default."""
    return parse_variant(wildcards.method).plain(DIFFTUNE["retention_n"]).name


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
    return [f"{RUNS}/metrics/ablation_{knob}/{ABLATIONS['dataset']}/{name}.csv" for name in names]


def peft_methods():
    """Run names of the PEFT table: each PEFT method with full_ft and diff_tuning, then the all-weights runs."""
    return [f"{method}+{peft}" for peft in PEFT["methods"] for method in ("full_ft", "diff_tuning")] + [
        "full_ft", "diff_tuning"]


def study_runs():
    """(dataset, run name) of every model the PEFT table and the ablations train or reuse."""
    runs = {(dataset, name) for dataset in PEFT["datasets"] for name in peft_methods()}
    runs |= {(ABLATIONS["dataset"], ablation_variant(knob, value).plain(DIFFTUNE["retention_n"]).name)
             for knob in ABLATION_KNOBS for value in ABLATIONS[knob]}  # no knobs without an ablations section
    return sorted(runs)


def peft_metric_files():
    """FID rows and trainable-parameter rows of every PEFT-table run."""
    pairs = dict(dataset=PEFT["datasets"], method=peft_methods())
    return (expand(f"{RUNS}/metrics/difftune_peft/{{dataset}}/{{method}}.csv", **pairs)
            + expand(f"{RUNS}/metrics/difftune_peft_params/{{dataset}}/{{method}}.csv", **pairs))


def dataset_root_flag(wildcards):
    """--root of a paper-scale dataset's folder (mini datasets are built from installed packages)."""
    return f"--root {PAPER['data_root']}/{wildcards.dataset}" if PAPER_SCALE else ""


def finetune_data_flag(wildcards):
    """The fine-tuning CLI's data.root override for a paper-scale dataset."""
    return f"--set data.root={PAPER['data_root']}/{wildcards.dataset}" if PAPER_SCALE else ""


def vae_flag():
    """--set model.vae: at paper scale the VAE is the pre-trained pipeline folder's vae/ (DiT-XL-2-256 ships it)."""
    return f"--set model.vae={PRETRAINED}" if PAPER_SCALE else ""


def extractor_input():
    """The local feature network the FID rules read (none at paper scale: Inception weights are a local file)."""
    return [] if PAPER_SCALE else [f"{RUNS}/features"]


def reference_extractor_flags(wildcards, input):
    """`benchmarks.fid ref` flags that choose the feature extractor of the comparison."""
    if PAPER_SCALE:
        return f"--extractor inception --inception-weights {PAPER['inception_weights']}"
    return f"--extractor local --features {input.features}"


def scoring_extractor_flags(wildcards, input):
    """Flags of the scoring CLIs (`benchmarks.fid calc`, `difftune.forgetting`): where the extractor's weights are."""
    if PAPER_SCALE:
        return f"--inception-weights {PAPER['inception_weights']}"
    return f"--features {input.features}"


def difftune_metric_files():
    """One results CSV per (dataset, method) of the main Diff-Tuning comparison."""
    return expand(f"{RUNS}/metrics/difftune_main/{{dataset}}/{{method}}.csv", dataset=DIFFTUNE["datasets"],
                  method=DIFFTUNE["methods"])


def deft_data_flag():
    """The DEFT CLIs' data.root override at paper scale (mini/smoke images come from installed packages)."""
    return f"--set data.root={PAPER['deft_data_root']}" if PAPER_SCALE else ""


def deft_trained_folder(task, method):
    """Where the model a method samples from is trained: DEFT's head, the amortised model (None for baselines)."""
    return {"deft": f"{RUNS}/deft/{task}/train", "amortised": f"{RUNS}/deft/{task}/amortised-train"}.get(method)


def deft_trained_input(wildcards):
    """The trained model a reconstruction needs (DEFT's head folder, the amortised model folder; none otherwise)."""
    folder = deft_trained_folder(wildcards.task, wildcards.method)
    return [f"{folder}/{'head' if wildcards.method == 'deft' else 'model'}"] if folder else []


def deft_trained_flag(wildcards, input):
    """`deft.reconstruct`'s flag for that model."""
    if not input.trained:
        return ""
    return f"{'--head' if wildcards.method == 'deft' else '--conditional'} {input.trained}"


def deft_train_summary_input(wildcards):
    """The training summary whose stats give the method's training time (DEFT, amortised)."""
    folder = deft_trained_folder(wildcards.task, wildcards.method)
    return [f"{folder}/summary.json"] if folder else []


def deft_extractor_flags(wildcards, input):
    """`deft.evaluate` flags for KID: Inception weights at paper scale, the local feature network otherwise."""
    if PAPER_SCALE:
        return f"--inception-weights {PAPER['inception_weights']}"
    return f"--features {input.features}"


def deft_methods(task):
    """DEFT and the configured baselines that can solve `task` (DDRM needs an SVD, ΠGDM and DDNM a linear operator;
    decided on the task's operator built at 16 px, which has the same structure at every size)."""
    op = build_operator(task_config(task), torch.zeros(1, dtype=torch.long), 16, 3)
    amortised = ["amortised"] if task in DEFT["amortised"] else []
    return ["deft", *amortised, *[method for method in DEFT["baselines"] if supports(method, op)]]


def deft_pairs():
    """(task, method) of every reconstruction."""
    return [(task, method) for task in DEFT["tasks"] for method in deft_methods(task)]


def deft_metric_files():
    """One results CSV per (task, method) of the DEFT comparison."""
    return [f"{RUNS}/metrics/deft_main/{task}/{method}.csv" for task, method in deft_pairs()]


def controlnet_base(wildcards):
    """The frozen model of a ControlNet: 'pretrained' is the source model, any other base is the fine-tuned model of
    that run name on the ControlNet dataset."""
    if wildcards.base == "pretrained":
        return PRETRAINED
    return f"{RUNS}/finetune/{wildcards.dataset}/{parse_variant(wildcards.base).name}/model"


def controlnet_summaries():
    """The summary.json of every ControlNet run (condition × base)."""
    return expand(f"{RUNS}/controlnet/{CONTROLNET['dataset']}/{{condition}}/{{base}}/summary.json",
                  condition=CONTROLNET["conditions"], base=CONTROLNET["bases"])


def protein_data_flag():
    """--set data.root=... at paper scale (the PDB folder); the mini/smoke sources are installed packages."""
    return f"--set data.root={PAPER['protein_root']}" if PAPER_SCALE else ""


def protein_model_input(wildcards):
    """The trained model a protein method samples with ({} for the training-free ones)."""
    if wildcards.method in PROTEIN_HEADS:
        return {"model": f"{RUNS}/protein/{wildcards.method}/model"}
    if wildcards.method == "amortised":
        return {"model": f"{RUNS}/protein/amortised/model"}
    return {}


def protein_sampler(wildcards):
    """The sampler of a protein method (every DEFT head samples with 'deft')."""
    return "deft" if wildcards.method in PROTEIN_HEADS else wildcards.method


def protein_train_summary(wildcards):
    """The training summary of a protein method's model ([] for the training-free ones)."""
    model = protein_model_input(wildcards)
    return [str(Path(model["model"]).parent / "summary.json")] if model else []


def protein_metric_files():
    """One results CSV per protein method."""
    return [f"{RUNS}/metrics/protein/{method}.csv" for method in PROTEIN_METHODS]


def final_outputs():
    """Every product of the DAG for the configured scale, intermediates included.

    Snakemake does not rerun a job whose output was deleted while its dependents are up to date; requesting every
    product here makes a deleted intermediate (and then only its dependents) run again.
    """
    pairs = dict(dataset=DIFFTUNE["datasets"], method=DIFFTUNE["methods"])
    products = [
        f"{RESULTS}/pretrain/source_grid.png",
        *expand(f"{RUNS}/fid-refs/{{dataset}}", dataset=DIFFTUNE["datasets"]),
        f"{RUNS}/retention",
        *expand(f"{RUNS}/finetune/{{dataset}}/{{method}}/model", **pairs),
        *expand(f"{RUNS}/samples/{{dataset}}/{{method}}", **pairs),
        *difftune_metric_files(),
        f"{RESULTS}/difftune_main.csv",
        f"{RESULTS}/tables/difftune_main.md",
        f"{RESULTS}/forgetting.csv",
        f"{RESULTS}/figures/forgetting.png",
        *[f"{RUNS}/finetune/{dataset}/{name}/model" for dataset, name in study_runs()],
        *[f"{RUNS}/samples/{dataset}/{name}" for dataset, name in study_runs()],
        *peft_metric_files(),
        f"{RESULTS}/difftune_peft.csv",
        f"{RESULTS}/tables/difftune_peft.md",
        *[path for knob in ABLATION_KNOBS for path in ablation_metric_files(knob)],
        *expand(f"{RESULTS}/ablation_{{knob}}.csv", knob=ABLATION_KNOBS),
        *expand(f"{RESULTS}/figures/ablation_{{knob}}.png", knob=ABLATION_KNOBS),
        *[str(Path(path).parent / "controlnet") for path in controlnet_summaries()],
        f"{RESULTS}/controlnet_fidelity.csv",
        f"{RESULTS}/controlnet.csv",
        f"{RESULTS}/tables/controlnet.md",
        f"{RESULTS}/figures/controlnet.png",
        *expand(f"{RUNS}/deft/{{task}}/train/head", task=DEFT["tasks"]),
        *expand(f"{RUNS}/deft/{{task}}/amortised-train/model", task=DEFT["amortised"]),
        *[f"{RUNS}/deft/{task}/{method}/recon.npz" for task, method in deft_pairs()],
        *deft_metric_files(),
        f"{RESULTS}/deft_main.csv",
        f"{RESULTS}/tables/deft_main.md",
        f"{RUNS}/protein/data",
        f"{RUNS}/protein/problems",
        f"{RUNS}/protein/prior/model",
        *[f"{RUNS}/protein/{name}/model" for name in PROTEIN_HEADS],
        *([f"{RUNS}/protein/amortised/model"] if "amortised" in PROTEIN["baselines"] else []),
        *expand(f"{RUNS}/protein/samples/{{method}}/samples.npz", method=PROTEIN_METHODS),
        *protein_metric_files(),
        f"{RESULTS}/protein_chains.csv",
        f"{RESULTS}/protein_prior_denoising.csv",
        f"{RESULTS}/protein_motif.csv",
        f"{RESULTS}/tables/protein_motif.md",
        f"{RESULTS}/tables/protein_motif_quality.md",
        f"{RESULTS}/figures/protein_scaffolds.png",
    ]
    if not PAPER_SCALE:
        products += [f"{RESULTS}/pretrain/summary.json", PRETRAINED, DEFT_BACKBONE, *extractor_input()]
    return products
