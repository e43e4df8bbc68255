# ControlNet convergence: a ControlNet branch per condition × objective × seed on the one frozen pre-trained model
# (the standard objective and Diff-Tuning's), fidelity curves, sudden-convergence steps and the acceleration over seeds.

include: "helpers/controlnet.smk"


rule control_train:
    input:
        base=PRETRAINED,
        retention=get_control_retention,
    output:
        model=directory(f"{RUNS}/controlnet/{{dataset}}/{{condition}}/{{objective}}/seed{{seed}}/controlnet"),
        summary=f"{RUNS}/controlnet/{{dataset}}/{{condition}}/{{objective}}/seed{{seed}}/summary.json",
    log:
        f"{RUNS}/logs/control_train/{{dataset}}/{{condition}}/{{objective}}/seed{{seed}}.log",
    benchmark:
        f"{RUNS}/benchmarks/control_train/{{dataset}}/{{condition}}/{{objective}}/seed{{seed}}.tsv"
    wildcard_constraints:
        condition="|".join(CONTROLNET["conditions"]),
        objective="|".join(CONTROLNET["objectives"]),
        seed=r"\d+",
    params:
        run_dir=subpath(output.summary, parent=True),
        retention=retention_flag,
        data=finetune_data_flag,
        vae=vae_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    shell:
        "{params.python} -m difftune.controlnet.train --scale {params.scale} --base {input.base}"
        " --objective {wildcards.objective} {params.retention} --condition {wildcards.condition}"
        " --dataset {wildcards.dataset} --set train.seed={wildcards.seed} {params.data} {params.vae}"
        " --out {params.run_dir} --no-progress > {log} 2>&1"


rule controlnet_summary:
    input:
        controlnet_summaries(),
    output:
        curves=f"{RESULTS}/controlnet_fidelity.csv",
        results=f"{RESULTS}/controlnet.csv",
    log:
        f"{RUNS}/logs/controlnet_summary.log",
    benchmark:
        f"{RUNS}/benchmarks/controlnet_summary.tsv"
    params:
        runs=controlnet_run_dirs,
        baseline=CONTROLNET["objectives"][0],
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.controlnet.summary {params.runs} --baseline {params.baseline}"
        " --curves {output.curves} --results {output.results} > {log} 2>&1"


rule controlnet_table:
    input:
        rules.controlnet_summary.output.results,
    output:
        md=report(f"{RESULTS}/tables/controlnet.md", caption="../report/controlnet.rst", category="Diff-Tuning"),
        tex=f"{RESULTS}/tables/controlnet.tex",
    log:
        f"{RUNS}/logs/controlnet_table.log",
    benchmark:
        f"{RUNS}/benchmarks/controlnet_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        objectives=",".join(CONTROLNET["objectives"]),
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.controlnet.report table --results {input} --layout controlnet"
        " --out-dir {params.out_dir} --methods {params.objectives} > {log} 2>&1"


rule controlnet_figure:
    input:
        rules.controlnet_summary.output.curves,
    output:
        report(f"{RESULTS}/figures/controlnet.png", caption="../report/controlnet.rst", category="Diff-Tuning"),
    log:
        f"{RUNS}/logs/controlnet_figure.log",
    benchmark:
        f"{RUNS}/benchmarks/controlnet_figure.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.controlnet.report figure controlnet --csv {input} --out {output} > {log} 2>&1"


rule controlnet_pictures:
    input:
        runs=controlnet_picture_summaries,
    output:
        png=report(f"{RESULTS}/figures/controlnet_{{condition}}.png", caption="../report/controlnet_pictures.rst",
                   category="Diff-Tuning"),
        caption=f"{RESULTS}/figures/controlnet_{{condition}}.json",
    log:
        f"{RUNS}/logs/controlnet_pictures/{{condition}}.log",
    benchmark:
        f"{RUNS}/benchmarks/controlnet_pictures/{{condition}}.tsv"
    wildcard_constraints:
        condition="|".join(CONTROLNET["conditions"]),
    params:
        runs=controlnet_picture_flags,
        pictures=PICTURE_COUNT,
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    shell:
        "{params.python} -m difftune.controlnet.report figure pictures --runs {params.runs} --count {params.pictures}"
        " --out {output.png} > {log} 2>&1"
