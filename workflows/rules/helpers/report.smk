# Helpers of the report (workflows/rules/report.smk): the products of each tier, the picture grids and what the
# HTML page of a tier shows.

REPORT_TIERS = ("headline", "all")
# The Diff-Tuning pictures' seeds: PICTURE_COUNT (common.smk), never more than the sample files hold.
DIFFTUNE_PICTURES = min(PICTURE_COUNT, DIFFTUNE["fid_samples"])
# The captions of the figures drawn from CSVs (the picture grids carry their own, with the protocol): by file stem,
# the report captions that Snakemake's own --report shows too.
FIGURE_CAPTIONS = {stem: f"workflows/report/{rst}.rst" for stem, rst in {
    "source_grid": "source_grid", "forgetting": "forgetting", "protein_scaffolds": "protein_figure",
    "controlnet": "controlnet", **{f"ablation_{knob}": "ablation" for knob in ABLATION_KNOBS}}.items()}


def picture_outputs():
    """The headline's picture grids: each downstream dataset's samples, the forgetting splice, each DEFT task's
    reconstructions (with the pre-trained model's samples and the splice images they read)."""
    return [
        f"{RUNS}/pictures/pretrained",
        *expand(f"{RESULTS}/figures/samples_{{dataset}}.png", dataset=DIFFTUNE["datasets"]),
        f"{RUNS}/forgetting_images.npz",
        f"{RESULTS}/figures/forgetting_splice.png",
        *expand(f"{RESULTS}/figures/deft_{{task}}.png", task=DEFT["tasks"]),
    ]


def tier_products(tier):
    """Every product of a tier's studies, intermediates included (the ledger and the report page are added by the
    target rules): the headline's, and in `all` every further study's."""
    products = [*pretrain_outputs(), *features_outputs(), *difftune_outputs(), *deft_outputs(), *protein_outputs(),
                *picture_outputs()]
    if tier == "all":
        products += [*difftune_studies_outputs(), *controlnet_outputs(), *deft_amortised_outputs(),
                     *protein_amortised_outputs()]
    return products


def report_outputs(tier):
    """The HTML report of `tier`."""
    return [f"{RESULTS}/report/{tier}.html"]


def report_tables(wildcards):
    """The Markdown tables of the tier, in the order its studies list them."""
    return [path for path in tier_products(wildcards.tier) if path.startswith(f"{RESULTS}/tables/")
            and path.endswith(".md")]


def report_figures(wildcards):
    """The PNGs of the tier: the source model's grid, then the figures and picture grids."""
    return [path for path in tier_products(wildcards.tier) if path.endswith(".png")]


def report_figure_flags(wildcards, input):
    """--figures items: each PNG, with its caption file after `=` when it has one (FIGURE_CAPTIONS)."""
    items = []
    for path in input.figures:
        caption = FIGURE_CAPTIONS.get(Path(path).stem)
        items.append(f"{path}={caption}" if caption else path)
    return " ".join(items)


def picture_sample_flags(wildcards, input):
    """--samples METHOD=FOLDER of each fine-tuned model's samples on a dataset, in the comparison's order."""
    return " ".join(f"{method}={folder}" for method, folder in zip(DIFFTUNE["methods"], input.samples))


def recon_methods(task):
    """The methods of a task's picture, in row order: DEFT, then the main comparison's baselines."""
    return ["deft", *DEFT["task_baselines"][task]]


def recon_runs(wildcards):
    """The reconstructions of a task's picture."""
    return [f"{RUNS}/deft/{wildcards.task}/{method}/recon.npz" for method in recon_methods(wildcards.task)]


def recon_run_flags(wildcards, input):
    """--runs METHOD=FOLDER of a task's picture."""
    return " ".join(f"{method}={Path(path).parent}" for method, path in zip(recon_methods(wildcards.task), input.runs))
