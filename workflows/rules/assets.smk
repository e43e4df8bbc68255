# The `assets` target: rebuild the four pre-trained assets into runs/SCALE/ (source DiT, DEFT backbone, feature
# network, protein prior), measure each one's quality curve, and compare them with the pinned manifests
# (runs/SCALE/assets/comparison.csv: hash equal or not, quality deltas). Nothing here replaces a pin: that is
# `python -m tunebench.assets pin` (docs/assets.md).

include: "helpers/assets.smk"


rule asset_quality_dit:
    wildcard_constraints:
        name="source_dit|deft_backbone",
    input:
        model=lambda wildcards: BUILT_ASSETS[wildcards.name],
        # The pinned extractor at mini, so that the rebuilt and the pinned fid_local are comparable.
        features=FEATURE_NET,
    output:
        quality=f"{RUNS}/assets/{{name}}/quality.json",
        curve=f"{RUNS}/assets/{{name}}/curve.csv",
        figure=f"{RUNS}/assets/{{name}}/curve.png",
    log:
        f"{RUNS}/logs/asset_quality/{{name}}.log",
    benchmark:
        f"{RUNS}/benchmarks/asset_quality/{{name}}.tsv"
    params:
        run_dir=lambda wildcards, input: Path(input.model).parent,
        labels=lambda wildcards: "cycle" if wildcards.name == "source_dit" else "null",
        guidance=config["difftune"]["guidance"],
        n=config["assets_quality"]["fid_samples"],
        steps=config["difftune"]["sample_steps"],
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{params.python} -m benchmarks.dit_quality --run {params.run_dir} --features {input.features}"
        " --labels {params.labels} --guidance {params.guidance} --n {params.n} --steps {params.steps}"
        " --out-csv {output.curve} --out-json {output.quality} --figure {output.figure} --no-progress > {log} 2>&1"


rule asset_quality_prior:
    input:
        model=BUILT_ASSETS["protein_prior"],
        data=rules.protein_prepare.output.data,
    output:
        quality=f"{RUNS}/assets/protein_prior/quality.json",
        curve=f"{RUNS}/assets/protein_prior/curve.csv",
        figure=f"{RUNS}/assets/protein_prior/curve.png",
    log:
        f"{RUNS}/logs/asset_quality/protein_prior.log",
    benchmark:
        f"{RUNS}/benchmarks/asset_quality/protein_prior.tsv"
    params:
        run_dir=lambda wildcards, input: Path(input.model).parent,
        samples=config["assets_quality"]["prior_samples"],
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{params.python} -m deft.protein.prior_quality --run {params.run_dir} --data {input.data}"
        " --scale {params.scale} --samples {params.samples} --out-csv {output.curve} --out-json {output.quality}"
        " --figure {output.figure} --no-progress > {log} 2>&1"


rule assets_compare:
    input:
        unpack(asset_comparison_inputs),
    output:
        f"{RUNS}/assets/comparison.csv",
    log:
        f"{RUNS}/logs/assets_compare.log",
    benchmark:
        f"{RUNS}/benchmarks/assets_compare.tsv"
    params:
        flags=asset_comparison_flags,
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m tunebench.assets compare --scale {params.scale} {params.flags} --out {output} > {log} 2>&1"


# Rebuild every asset and compare it with its pin: snakemake ... assets
rule assets:
    input:
        rules.assets_compare.output,
