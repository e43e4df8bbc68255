# The tunebench reproduction DAG: pre-train the source DiT, then the Diff-Tuning comparison and forgetting curve,
# then DEFT and its baselines on the image inverse problems, then DEFT motif scaffolding on Cα backbones.
# Run: snakemake --cores 2 --configfile workflows/config/mini.yaml   (smoke.yaml for a minutes-long check)
from snakemake.utils import min_version

min_version("9.0")


configfile: "workflows/config/mini.yaml"


report: "workflows/report/workflow.rst"


include: "workflows/rules/common.smk"
include: "workflows/rules/pretrain.smk"
include: "workflows/rules/features.smk"
include: "workflows/rules/latents.smk"
include: "workflows/rules/difftune.smk"
include: "workflows/rules/difftune_studies.smk"
include: "workflows/rules/controlnet.smk"
include: "workflows/rules/deft.smk"
include: "workflows/rules/protein.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
