# The report a reader opens: picture grids (the same seeds or test images in every row, each with its protocol
# caption) and one static HTML page per tier that starts with the claims ledger and links each claim to its tables,
# figures and pictures (benchmarks.report page; tests/benchmarks/test_report_page.py opens it in headless Chromium).

include: "helpers/report.smk"


# The pre-trained model on the pictures' seeds with its null label (its classes are the source domain's), as the
# forgetting splice samples it: one set for every downstream dataset.
rule sample_pretrained:
    input:
        model=PRETRAINED,
    output:
        directory(f"{RUNS}/pictures/pretrained"),
    log:
        f"{RUNS}/logs/sample_pretrained.log",
    benchmark:
        f"{RUNS}/benchmarks/sample_pretrained.tsv"
    params:
        seeds=f"0-{DIFFTUNE_PICTURES - 1}",
        overrides=sampling_overrides(),
        vae=vae_flag(),
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=1,
    shell:
        "{params.python} -m tunebench.sample --model {input.model} --out {output} --seeds {params.seeds}"
        " --labels null {params.overrides} {params.vae} --no-progress > {log} 2>&1"


rule samples_figure:
    wildcard_constraints:
        dataset="|".join(DIFFTUNE["datasets"]),
    input:
        samples=expand(f"{RUNS}/samples/{{{{dataset}}}}/{{method}}", method=DIFFTUNE["methods"]),
        pretrained=rules.sample_pretrained.output,
    output:
        png=report(f"{RESULTS}/figures/samples_{{dataset}}.png", caption="../report/samples.rst",
                   category="Diff-Tuning"),
        caption=f"{RESULTS}/figures/samples_{{dataset}}.json",
    log:
        f"{RUNS}/logs/samples_figure/{{dataset}}.log",
    benchmark:
        f"{RUNS}/benchmarks/samples_figure/{{dataset}}.tsv"
    params:
        samples=picture_sample_flags,
        root=dataset_root_flag,
        pictures=DIFFTUNE_PICTURES,
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    shell:
        "{params.python} -m difftune.report figure samples --dataset {wildcards.dataset} --samples {params.samples}"
        " --pretrained {input.pretrained} {params.root} --count {params.pictures} --out {output.png} > {log} 2>&1"


rule forgetting_splice_figure:
    input:
        images=rules.forgetting_curve.output.images,
        csv=rules.forgetting_curve.output.csv,
    output:
        png=report(f"{RESULTS}/figures/forgetting_splice.png", caption="../report/forgetting_splice.rst",
                   category="Diff-Tuning"),
        caption=f"{RESULTS}/figures/forgetting_splice.json",
    log:
        f"{RUNS}/logs/forgetting_splice_figure.log",
    benchmark:
        f"{RUNS}/benchmarks/forgetting_splice_figure.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report figure splice --npz {input.images} --csv {input.csv} --out {output.png}"
        " > {log} 2>&1"


rule deft_recon_figure:
    wildcard_constraints:
        task=DEFT_TASK_PATTERN,
    input:
        runs=recon_runs,
    output:
        png=report(f"{RESULTS}/figures/deft_{{task}}.png", caption="../report/deft_recon.rst", category="DEFT"),
        caption=f"{RESULTS}/figures/deft_{{task}}.json",
    log:
        f"{RUNS}/logs/deft_recon_figure/{{task}}.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_recon_figure/{{task}}.tsv"
    params:
        runs=recon_run_flags,
        pictures=PICTURE_COUNT,
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    shell:
        "{params.python} -m deft.report figure recon --task {wildcards.task} --runs {params.runs}"
        " --count {params.pictures} --out {output.png} > {log} 2>&1"


rule report_page:
    wildcard_constraints:
        tier="|".join(REPORT_TIERS),
    input:
        claims=f"{RESULTS}/claims/{{tier}}.csv",
        tables=report_tables,
        figures=report_figures,
    output:
        f"{RESULTS}/report/{{tier}}.html",
    log:
        f"{RUNS}/logs/report_page/{{tier}}.log",
    benchmark:
        f"{RUNS}/benchmarks/report_page/{{tier}}.tsv"
    params:
        figures=report_figure_flags,
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.report page --claims {input.claims} --tables {input.tables}"
        " --figures {params.figures} --scale {params.scale} --tier {wildcards.tier} --out {output} > {log} 2>&1"
