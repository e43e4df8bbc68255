# The fine-tuning-length study (target regime, apart from the tiers): Diff-Tuning vs full fine-tuning as fine-tuning
# runs longer (difftune.regime), on datasets picked by a declared rule, with several training seeds. Each length
# continues the next shorter run from its checkpoint (difftune.finetune --start-from), so a run of 8000 steps costs
# 8000 steps in all; the models are sampled and scored as the main comparison's are (rules sample_finetuned and
# fid_finetuned, experiment difftune_regime).

include: "helpers/difftune_regime.smk"


rule regime_results:
    input:
        regime_metric_files(),
    output:
        f"{RESULTS}/difftune_regime.csv",
    log:
        f"{RUNS}/logs/regime_results.log",
    benchmark:
        f"{RUNS}/benchmarks/regime_results.tsv"
    params:
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.seeds --out {output} --metric {params.metric} --baseline full_ft"
        " --experiment difftune_regime {input} > {log} 2>&1"


rule regime_table:
    input:
        rules.regime_results.output,
    output:
        md=report(f"{RESULTS}/tables/difftune_regime.md", caption="../report/regime.rst", category="Diff-Tuning"),
        tex=f"{RESULTS}/tables/difftune_regime.tex",
    log:
        f"{RUNS}/logs/regime_table.log",
    benchmark:
        f"{RUNS}/benchmarks/regime_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join(DIFFTUNE["methods"]),
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report table --results {input} --layout regime --out-dir {params.out_dir}"
        " --methods {params.methods} --metric {params.metric} --baseline full_ft > {log} 2>&1"


rule regime_figure:
    input:
        rules.regime_results.output,
    output:
        report(f"{RESULTS}/figures/difftune_regime.png", caption="../report/regime.rst", category="Diff-Tuning"),
    log:
        f"{RUNS}/logs/regime_figure.log",
    benchmark:
        f"{RUNS}/benchmarks/regime_figure.tsv"
    params:
        metric=FID_METRIC,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m difftune.report figure regime --csv {input} --out {output} --metric {params.metric}"
        " > {log} 2>&1"


# Run the study: snakemake ... regime (an input function, so that a config without the study plans its other targets)
rule regime:
    input:
        get_regime_outputs,
