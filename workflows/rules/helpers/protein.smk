# Helpers of DEFT motif scaffolding (workflows/rules/protein.smk): the method names (heads from their sizes by
# deft.protein.config.head_name, torch-free) and the trained model each method samples with.
from deft.protein.config import head_name

PROTEIN = config["protein"]
PROTEIN_HEADS = {head_name(fraction): fraction for fraction in PROTEIN["heads"]}
# The headline's motif table; the amortised upper bound (target all) has its own table beside the heads.
PROTEIN_METHODS = [*PROTEIN["baselines"], *PROTEIN_HEADS]
PROTEIN_AMORTISED_METHODS = ["amortised", *PROTEIN_HEADS] if PROTEIN["amortised"] else []
# Every method that samples, whichever table it belongs to.
PROTEIN_SAMPLED = list(dict.fromkeys([*PROTEIN_METHODS, *PROTEIN_AMORTISED_METHODS]))
# The unconditional prior every method samples with: pinned at mini, trained by the DAG at smoke and paper scale.
PROTEIN_PRIOR = asset("protein_prior")


def protein_data_flag():
    """--set data.root=... at paper scale (the PDB folder); the mini/smoke sources are installed packages."""
    return f"--set data.root={PAPER['protein_root']}" if PAPER_SCALE else ""


def head_fraction(wildcards):
    """The size of a head run, as a fraction of the prior."""
    return PROTEIN_HEADS[wildcards.head]


def get_protein_model(wildcards):
    """The trained model a protein method samples with ({} for the training-free ones)."""
    if wildcards.method in PROTEIN_HEADS:
        return {"model": f"{RUNS}/protein/{wildcards.method}/model"}
    if wildcards.method == "amortised":
        return {"model": f"{RUNS}/protein/amortised/model"}
    return {}


def protein_model_flag(wildcards, input):
    """`deft.protein.sample`'s --model of that model."""
    return f"--model {input.model}" if "model" in input.keys() else ""


def protein_sampler(wildcards):
    """The sampler of a protein method (every DEFT head samples with 'deft')."""
    return "deft" if wildcards.method in PROTEIN_HEADS else wildcards.method


def get_protein_train_summary(wildcards):
    """The training summary of a protein method's model ([] for the training-free ones)."""
    model = get_protein_model(wildcards)
    return [str(Path(model["model"]).parent / "summary.json")] if model else []


def protein_metric_files(methods):
    """One results CSV per protein method of `methods`."""
    return [f"{RUNS}/metrics/protein/{method}.csv" for method in methods]


def protein_sample_dirs(wildcards, input):
    """METHOD=FOLDER of every method's samples, as `deft.protein.figure` takes them."""
    return " ".join(f"{method}={Path(path).parent}" for method, path in zip(PROTEIN_METHODS, input.samples))


def protein_outputs():
    """Every product of motif scaffolding, the models and samples of each method included."""
    return [
        f"{RUNS}/protein/data",
        f"{RUNS}/protein/problems",
        *([PROTEIN_PRIOR] if built_by_dag("protein_prior") else []),
        *[f"{RUNS}/protein/{name}/model" for name in PROTEIN_HEADS],
        *expand(f"{RUNS}/protein/samples/{{method}}/samples.npz", method=PROTEIN_METHODS),
        *protein_metric_files(PROTEIN_METHODS),
        f"{RESULTS}/protein_chains.csv",
        f"{RESULTS}/protein_prior_denoising.csv",
        f"{RESULTS}/tables/protein_prior_denoising.md",
        f"{RESULTS}/protein_motif.csv",
        f"{RESULTS}/tables/protein_motif.md",
        f"{RESULTS}/tables/protein_motif_quality.md",
        f"{RESULTS}/figures/protein_scaffolds.png",
    ]


def protein_amortised_outputs():
    """Every product of the amortised upper bound beside the DEFT heads: its model, samples, results and table (none
    when protein.amortised is false)."""
    if not PROTEIN_AMORTISED_METHODS:
        return []
    return [
        f"{RUNS}/protein/amortised/model",
        f"{RUNS}/protein/samples/amortised/samples.npz",
        *protein_metric_files(PROTEIN_AMORTISED_METHODS),
        f"{RESULTS}/protein_amortised.csv",
        f"{RESULTS}/tables/protein_amortised.md",
    ]
