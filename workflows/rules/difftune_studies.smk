# Diff-Tuning's further experiments: the PEFT-compatibility table, the training-seed replicates of the main
# comparison and one-knob ablations (τ, λ, retention ratio, retention set size vs real source images). Runs are named
# by difftune.variants and trained by rule finetune.

include: "helpers/difftune_studies.smk"


rule retention_source:
    output:
        directory(f"{RUNS}/retention-source"),
    log:
        f"{RUNS}/logs/retention_source.log",
    benchmark:
        f"{RUNS}/benchmarks/retention_source.tsv"
    params:
        n=DIFFTUNE["retention_n"],
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "{params.python} -m difftune.retention --kind source --dataset source --scale {params.scale}"
        " --n {params.n} --out {output} > {log} 2>&1"


rule finetune_params:
    input:
        summary=rules.finetune.output.summary,
    output:
        f"{RUNS}/metrics/difftune_peft_params/{{dataset}}/{{method}}.csv",
    log:
        f"{RUNS}/logs/finetune_params/{{dataset}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/finetune_params/{{dataset}}/{{method}}.tsv"
    params:
        run_dir=subpath(input.summary, parent=True),
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.param_rows --run {params.run_dir} --results {output}"
        " --experiment difftune_peft --method {wildcards.method} > {log} 2>&1"


rule peft_results:
    input:
        peft_metric_files(),
    output:
        f"{RESULTS}/difftune_peft.csv",
    log:
        f"{RUNS}/logs/peft_results.log",
    benchmark:
        f"{RUNS}/benchmarks/peft_results.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --out {output} {input} > {log} 2>&1"


rule peft_table:
    input:
        rules.peft_results.output,
    output:
        md=report(f"{RESULTS}/tables/difftune_peft.md", caption="../report/peft_table.rst", category="Diff-Tuning"),
        tex=f"{RESULTS}/tables/difftune_peft.tex",
    log:
        f"{RUNS}/logs/peft_table.log",
    benchmark:
        f"{RUNS}/benchmarks/peft_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report table --results {input} --layout peft --out-dir {params.out_dir}"
        " --metric {params.metric} > {log} 2>&1"


# The seed replicates' FID rows (seed 0's from the main comparison) summarised over seeds, with intervals.
rule difftune_seeds_results:
    input:
        seed_metric_files(),
    output:
        f"{RESULTS}/difftune_seeds.csv",
    log:
        f"{RUNS}/logs/difftune_seeds_results.log",
    benchmark:
        f"{RUNS}/benchmarks/difftune_seeds_results.tsv"
    params:
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.seeds --out {output} --metric {params.metric} --baseline full_ft {input}"
        " > {log} 2>&1"


rule difftune_seeds_table:
    input:
        rules.difftune_seeds_results.output,
    output:
        md=report(f"{RESULTS}/tables/difftune_seeds.md", caption="../report/seeds_table.rst", category="Diff-Tuning"),
        tex=f"{RESULTS}/tables/difftune_seeds.tex",
    log:
        f"{RUNS}/logs/difftune_seeds_table.log",
    benchmark:
        f"{RUNS}/benchmarks/difftune_seeds_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join(DIFFTUNE["methods"]),
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report table --results {input} --layout seeds --out-dir {params.out_dir}"
        " --methods {params.methods} --metric {params.metric} --baseline full_ft > {log} 2>&1"


rule ablation_results:
    input:
        get_ablation_metrics,
    output:
        f"{RESULTS}/ablation_{{knob}}.csv",
    log:
        f"{RUNS}/logs/ablation_results/{{knob}}.log",
    benchmark:
        f"{RUNS}/benchmarks/ablation_results/{{knob}}.tsv"
    wildcard_constraints:
        knob="|".join(ABLATION_KNOBS),
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --out {output} {input} > {log} 2>&1"


rule ablation_figure:
    input:
        rules.ablation_results.output,
    output:
        report(f"{RESULTS}/figures/ablation_{{knob}}.png", caption="../report/ablation.rst", category="Diff-Tuning"),
    log:
        f"{RUNS}/logs/ablation_figure/{{knob}}.log",
    benchmark:
        f"{RUNS}/benchmarks/ablation_figure/{{knob}}.tsv"
    wildcard_constraints:
        knob="|".join(ABLATION_KNOBS),
    params:
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report figure ablation --csv {input} --out {output} --metric {params.metric}"
        " > {log} 2>&1"


# The objective taken apart on the study dataset: full_ft, each half alone (t-weighting only, retention only) and
# diff_tuning, in one table (layout difftune, relative change against full_ft).
rule ablation_components_results:
    input:
        component_metric_files(),
    output:
        f"{RESULTS}/ablation_components.csv",
    log:
        f"{RUNS}/logs/ablation_components_results.log",
    benchmark:
        f"{RUNS}/benchmarks/ablation_components_results.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --out {output} {input} > {log} 2>&1"


rule ablation_components_table:
    input:
        rules.ablation_components_results.output,
    output:
        md=report(f"{RESULTS}/tables/ablation_components.md", caption="../report/ablation_components.rst",
                  category="Diff-Tuning"),
        tex=f"{RESULTS}/tables/ablation_components.tex",
    log:
        f"{RUNS}/logs/ablation_components_table.log",
    benchmark:
        f"{RUNS}/benchmarks/ablation_components_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join(component_methods()),
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report table --results {input} --layout difftune --out-dir {params.out_dir}"
        " --methods {params.methods} --metric {params.metric} --baseline full_ft > {log} 2>&1"
