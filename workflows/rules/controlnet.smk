# ControlNet convergence: a ControlNet branch per condition on each frozen base (the pre-trained model and the
# Diff-Tuning-adapted one), fidelity curves, sudden-convergence steps and the relative acceleration.

include: "helpers/controlnet.smk"


rule control_train:
    input:
        base=get_controlnet_base,
    output:
        model=directory(f"{RUNS}/controlnet/{{dataset}}/{{condition}}/{{base}}/controlnet"),
        summary=f"{RUNS}/controlnet/{{dataset}}/{{condition}}/{{base}}/summary.json",
    log:
        f"{RUNS}/logs/control_train/{{dataset}}/{{condition}}/{{base}}.log",
    benchmark:
        f"{RUNS}/benchmarks/control_train/{{dataset}}/{{condition}}/{{base}}.tsv"
    wildcard_constraints:
        condition="|".join(CONTROLNET["conditions"]),
    params:
        run_dir=subpath(output.summary, parent=True),
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
        " --condition {wildcards.condition} --dataset {wildcards.dataset} {params.data} {params.vae}"
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
        baseline=CONTROLNET["bases"][0],
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
        bases=",".join(CONTROLNET["bases"]),
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.controlnet.report table --results {input} --layout controlnet"
        " --out-dir {params.out_dir} --methods {params.bases} > {log} 2>&1"


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
