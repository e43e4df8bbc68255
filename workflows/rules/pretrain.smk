# Pre-train the "pre-trained" source model (smoke, and the `assets` target's rebuild at mini, which otherwise reads
# the pinned assets/mini/source_dit; paper scale loads DiT-XL/2 from config paper.pretrained) and sample a class
# grid from it.

include: "helpers/pretrain.smk"


rule pretrain_source:
    output:
        model=directory(f"{RUNS}/source/model"),
        summary=f"{RUNS}/source/summary.json",
    log:
        f"{RUNS}/logs/pretrain_source.log",
    benchmark:
        f"{RUNS}/benchmarks/pretrain_source.tsv"
    params:
        run_dir=subpath(output.model, parent=True),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: 1  # one thread: the pinned asset's bytes depend on it (docs/assets.md), and two builds share 2 cores
    resources:
        mem_mb=4000,
        runtime=90,
    shell:
        # Every checkpoint is kept: the asset's quality curve is measured on them (rule asset_quality_dit).
        "{params.python} -m tunebench.pretrain --scale {params.scale} --set train.checkpoints_keep=1000"
        " --out {params.run_dir} --no-progress > {log} 2>&1"


rule sample_source_grid:
    input:
        model=PRETRAINED,
    output:
        grid=report(
            f"{RESULTS}/pretrain/source_grid.png", caption="../report/source_grid.rst", category="Pre-training"
        ),
        samples=directory(f"{RUNS}/source/samples-grid"),
    log:
        f"{RUNS}/logs/sample_source_grid.log",
    benchmark:
        f"{RUNS}/benchmarks/sample_source_grid.tsv"
    params:
        seeds=config["grid_seeds"],
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "{params.python} -m tunebench.sample --model {input.model} --out {output.samples} --seeds {params.seeds}"
        " --labels cycle --grid {output.grid} --no-progress > {log} 2>&1"
