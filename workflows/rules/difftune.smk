# Diff-Tuning: retention set → fine-tune every (dataset × method) → sample → FID → table; chain-of-forgetting curve.
# At paper scale fine-tuning reads latent caches (workflows/rules/latents.smk) when difftune.cache_latents is set.

include: "helpers/difftune.smk"


rule retention_set:
    input:
        model=PRETRAINED,
    output:
        directory(f"{RUNS}/retention"),
    log:
        f"{RUNS}/logs/retention_set.log",
    benchmark:
        f"{RUNS}/benchmarks/retention_set.tsv"
    params:
        n=DIFFTUNE["retention_n"],
        vae=vae_flag(),
        scale=SCALE,
        launch=launch("difftune.retention"),
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPUS_PER_JOB,
    shell:
        "{params.launch} --scale {params.scale} --model {input.model} --out {output}"
        " --n {params.n} {params.vae} --no-progress > {log} 2>&1"


rule finetune:
    input:
        pretrained=PRETRAINED,
        retention=get_retention,
        latents=get_latents,
        start=get_start_summary,
    output:
        model=directory(f"{RUNS}/finetune/{{dataset}}/{{method}}/model"),
        summary=f"{RUNS}/finetune/{{dataset}}/{{method}}/summary.json",
    log:
        f"{RUNS}/logs/finetune/{{dataset}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/finetune/{{dataset}}/{{method}}.tsv"
    params:
        run_dir=subpath(output.summary, parent=True),
        retention=retention_flag,
        start=start_flag,
        variant=finetune_variant_flags,
        data=finetune_data_flag,
        latents=latents_flag,
        vae=vae_flag(),
        scale=SCALE,
        launch=launch("difftune.finetune"),
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPUS_PER_JOB,
    shell:
        "{params.launch} --scale {params.scale} --pretrained {input.pretrained}"
        " {params.retention} --dataset {wildcards.dataset} {params.variant} {params.data} {params.latents}"
        " {params.vae} {params.start}"
        " --out {params.run_dir} --no-progress > {log} 2>&1"


rule sample_finetuned:
    input:
        model=rules.finetune.output.model,
    output:
        directory(f"{RUNS}/samples/{{dataset}}/{{method}}"),
    log:
        f"{RUNS}/logs/sample_finetuned/{{dataset}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/sample_finetuned/{{dataset}}/{{method}}.tsv"
    params:
        seeds=fid_samples_seeds(),
        overrides=sampling_overrides(),
        launch=launch("tunebench.sample"),
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPUS_PER_JOB,
    shell:
        "{params.launch} --model {input.model} --out {output} --seeds {params.seeds}"
        " --labels uniform {params.overrides} --no-progress > {log} 2>&1"


# FID rows of one experiment's method; an ablation point at its default value scores the plain run's samples.
rule fid_finetuned:
    input:
        samples=get_scored_samples,
        ref=f"{RUNS}/fid-refs/{{dataset}}",
        features=FEATURE_NET,
    output:
        f"{RUNS}/metrics/{{experiment}}/{{dataset}}/{{method}}.csv",
    log:
        f"{RUNS}/logs/fid_finetuned/{{experiment}}/{{dataset}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/fid_finetuned/{{experiment}}/{{dataset}}/{{method}}.tsv"
    wildcard_constraints:
        experiment=FID_EXPERIMENT_PATTERN,
    params:
        extractor=scoring_extractor_flags,
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "{params.python} -m benchmarks.fid calc --images {input.samples} --ref {input.ref}/*.npz"
        " {params.extractor} --results {output} --experiment {wildcards.experiment} --method {wildcards.method}"
        " --dataset {wildcards.dataset} --scale {params.scale} --seed 0 > {log} 2>&1"


rule difftune_results:
    input:
        difftune_metric_files(),
    output:
        f"{RESULTS}/difftune_main.csv",
    log:
        f"{RUNS}/logs/difftune_results.log",
    benchmark:
        f"{RUNS}/benchmarks/difftune_results.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --out {output} {input} > {log} 2>&1"


rule difftune_table:
    input:
        rules.difftune_results.output,
    output:
        md=report(f"{RESULTS}/tables/difftune_main.md", caption="../report/difftune_table.rst", category="Diff-Tuning"),
        tex=f"{RESULTS}/tables/difftune_main.tex",
    log:
        f"{RUNS}/logs/difftune_table.log",
    benchmark:
        f"{RUNS}/benchmarks/difftune_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join(DIFFTUNE["methods"]),
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report table --results {input} --layout difftune --out-dir {params.out_dir}"
        " --methods {params.methods} --metric {params.metric} --baseline full_ft > {log} 2>&1"


rule forgetting_curve:
    input:
        finetuned=f"{RUNS}/finetune/{STUDY_DATASET}/{FORGETTING['method']}/model",
        pretrained=PRETRAINED,
        ref=f"{RUNS}/fid-refs/{STUDY_DATASET}",
        features=FEATURE_NET,
    output:
        csv=f"{RESULTS}/forgetting.csv",
        images=f"{RUNS}/forgetting_images.npz",  # the first seeds of every point, for the report's splice picture
    log:
        f"{RUNS}/logs/forgetting_curve.log",
    benchmark:
        f"{RUNS}/benchmarks/forgetting_curve.tsv"
    params:
        t0=FORGETTING["t0"],
        seeds=FORGETTING["seeds"],
        pictures=PICTURE_COUNT,
        overrides=sampling_overrides(),
        extractor=scoring_extractor_flags,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1,
    shell:
        "{params.python} -m difftune.forgetting --finetuned {input.finetuned} --pretrained {input.pretrained}"
        " --ref {input.ref}/*.npz {params.extractor} --t0 {params.t0} --seeds {params.seeds}"
        " {params.overrides} --out {output.csv} --images-out {output.images} --images {params.pictures}"
        " --no-progress > {log} 2>&1"


rule forgetting_figure:
    input:
        rules.forgetting_curve.output.csv,
    output:
        report(f"{RESULTS}/figures/forgetting.png", caption="../report/forgetting.rst", category="Diff-Tuning"),
    log:
        f"{RUNS}/logs/forgetting_figure.log",
    benchmark:
        f"{RUNS}/benchmarks/forgetting_figure.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report figure forgetting --csv {input} --out {output} > {log} 2>&1"
