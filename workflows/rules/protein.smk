# DEFT motif scaffolding on Cα backbones: prepared chains (identity split, manifest) → unconditional EGNN prior →
# DEFT heads (4% and 9% of the prior) and the amortised model → motif problems from held-out chains → scaffolds by
# every method → folding-free metrics → tables and a figure.

include: "helpers/protein.smk"


rule protein_prepare:
    output:
        data=directory(f"{RUNS}/protein/data"),
        manifest=f"{RESULTS}/protein_chains.csv",
    log:
        f"{RUNS}/logs/protein_prepare.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_prepare.tsv"
    params:
        root=protein_data_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{params.python} -m deft.protein.prepare --scale {params.scale} {params.root} --out {output.data} > {log} 2>&1"
        " && cp {output.data}/manifest.csv {output.manifest}"


rule protein_problems:
    input:
        data=rules.protein_prepare.output.data,
    output:
        directory(f"{RUNS}/protein/problems"),
    log:
        f"{RUNS}/logs/protein_problems.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_problems.tsv"
    params:
        root=protein_data_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.protein.problems --scale {params.scale} {params.root} --data {input.data}"
        " --out {output} > {log} 2>&1"


rule protein_train_prior:
    input:
        data=rules.protein_prepare.output.data,
    output:
        model=directory(BUILT_ASSETS["protein_prior"]),
        summary=f"{RUNS}/protein/prior/summary.json",
    log:
        f"{RUNS}/logs/protein_train/prior.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_train/prior.tsv"
    params:
        run_dir=subpath(output.summary, parent=True),
        root=protein_data_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: 1  # one thread: the pinned asset's bytes depend on it (docs/assets.md), and two builds share 2 cores
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=1,
    shell:
        # Every checkpoint is kept: the asset's quality curve is measured on them (rule asset_quality_prior).
        "{params.python} -m deft.protein.train prior --scale {params.scale} {params.root} --data {input.data}"
        " --set train.checkpoints_keep=1000 --out {params.run_dir} --no-progress > {log} 2>&1"


rule protein_prior_denoising:
    input:
        problems=rules.protein_problems.output,
        prior=PROTEIN_PRIOR,
    output:
        csv=f"{RESULTS}/protein_prior_denoising.csv",
        table=f"{RESULTS}/tables/protein_prior_denoising.md",
    log:
        f"{RUNS}/logs/protein_prior_denoising.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_prior_denoising.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    shell:
        "{params.python} -m deft.protein.denoising --prior {input.prior} --problems {input.problems}"
        " --out {output.csv} --table {output.table} > {log} 2>&1"


rule protein_train_head:
    wildcard_constraints:
        head="|".join(PROTEIN_HEADS),
    input:
        data=rules.protein_prepare.output.data,
        prior=PROTEIN_PRIOR,
    output:
        model=directory(f"{RUNS}/protein/{{head}}/model"),
        summary=f"{RUNS}/protein/{{head}}/summary.json",
    log:
        f"{RUNS}/logs/protein_train/{{head}}.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_train/{{head}}.tsv"
    params:
        run_dir=subpath(output.summary, parent=True),
        fraction=head_fraction,
        root=protein_data_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=1,
    shell:
        "{params.python} -m deft.protein.train head --scale {params.scale} {params.root} --data {input.data}"
        " --prior {input.prior} --fraction {params.fraction} --out {params.run_dir} --no-progress > {log} 2>&1"


rule protein_train_amortised:
    input:
        data=rules.protein_prepare.output.data,
    output:
        model=directory(f"{RUNS}/protein/amortised/model"),
        summary=f"{RUNS}/protein/amortised/summary.json",
    log:
        f"{RUNS}/logs/protein_train/amortised.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_train/amortised.tsv"
    params:
        run_dir=subpath(output.summary, parent=True),
        root=protein_data_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=1,
    shell:
        "{params.python} -m deft.protein.train amortised --scale {params.scale} {params.root} --data {input.data}"
        " --out {params.run_dir} --no-progress > {log} 2>&1"


rule protein_sample:
    wildcard_constraints:
        method="|".join(PROTEIN_SAMPLED),
    input:
        unpack(get_protein_model),
        problems=rules.protein_problems.output,
        prior=PROTEIN_PRIOR,
    output:
        samples=f"{RUNS}/protein/samples/{{method}}/samples.npz",
        stats=f"{RUNS}/protein/samples/{{method}}/stats.json",
    log:
        f"{RUNS}/logs/protein_sample/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_sample/{{method}}.tsv"
    params:
        out_dir=subpath(output.samples, parent=True),
        sampler=protein_sampler,
        model=protein_model_flag,
        root=protein_data_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=1,
    shell:
        "{params.python} -m deft.protein.sample {params.sampler} --scale {params.scale} {params.root}"
        " --problems {input.problems} --prior {input.prior} {params.model} --out {params.out_dir} --no-progress"
        " > {log} 2>&1"


rule protein_evaluate:
    wildcard_constraints:
        method="|".join(PROTEIN_SAMPLED),
    input:
        problems=rules.protein_problems.output,
        samples=rules.protein_sample.output.samples,
        train_summary=get_protein_train_summary,
    output:
        results=f"{RUNS}/metrics/protein/{{method}}.csv",
        per_sample=f"{RUNS}/metrics/protein/{{method}}.samples.csv",
    log:
        f"{RUNS}/logs/protein_evaluate/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_evaluate/{{method}}.tsv"
    params:
        samples_dir=subpath(input.samples, parent=True),
        train=train_summary_flag,
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        "rm -f {output.results} && {params.python} -m deft.protein.evaluate --problems {input.problems}"
        " --samples {params.samples_dir} --method {wildcards.method} {params.train} --results {output.results}"
        " --per-sample {output.per_sample} > {log} 2>&1"


rule protein_results:
    input:
        protein_metric_files(PROTEIN_METHODS),
    output:
        f"{RESULTS}/protein_motif.csv",
    log:
        f"{RUNS}/logs/protein_results.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_results.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --out {output} {input} > {log} 2>&1"


rule protein_table:
    input:
        rules.protein_results.output,
    output:
        md=report(f"{RESULTS}/tables/protein_motif.md", caption="../report/protein_table.rst", category="DEFT"),
        tex=f"{RESULTS}/tables/protein_motif.tex",
        quality_md=f"{RESULTS}/tables/protein_motif_quality.md",
        quality_tex=f"{RESULTS}/tables/protein_motif_quality.tex",
    log:
        f"{RUNS}/logs/protein_table.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join(PROTEIN_METHODS),  # DEFT last, as in the paper's figure
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "({params.python} -m deft.protein.report table --results {input} --layout protein --out-dir {params.out_dir}"
        " --methods {params.methods} && {params.python} -m deft.protein.report table --results {input}"
        " --layout protein_quality --out-dir {params.out_dir} --methods {params.methods}) > {log} 2>&1"


# The amortised upper bound beside the DEFT heads, apart from protein_motif: the headline's table stays the same
# whether or not the amortised model (target `all`) was trained. Its rows are relabelled experiment
# protein_amortised, which names the table.
rule protein_amortised_results:
    input:
        protein_metric_files(PROTEIN_AMORTISED_METHODS),
    output:
        f"{RESULTS}/protein_amortised.csv",
    log:
        f"{RUNS}/logs/protein_amortised_results.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_amortised_results.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --experiment protein_amortised --out {output} {input}"
        " > {log} 2>&1"


rule protein_amortised_table:
    input:
        rules.protein_amortised_results.output,
    output:
        md=report(f"{RESULTS}/tables/protein_amortised.md", caption="../report/protein_amortised.rst",
                  category="DEFT"),
        tex=f"{RESULTS}/tables/protein_amortised.tex",
    log:
        f"{RUNS}/logs/protein_amortised_table.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_amortised_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join(PROTEIN_AMORTISED_METHODS),
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.protein.report table --results {input} --layout protein --out-dir {params.out_dir}"
        " --methods {params.methods} > {log} 2>&1"


rule protein_figure:
    input:
        problems=rules.protein_problems.output,
        samples=expand(f"{RUNS}/protein/samples/{{method}}/samples.npz", method=PROTEIN_METHODS),
    output:
        figure=report(f"{RESULTS}/figures/protein_scaffolds.png", caption="../report/protein_figure.rst",
                      category="DEFT"),
        pdbs=directory(f"{RESULTS}/figures/protein_best_scaffolds"),
    log:
        f"{RUNS}/logs/protein_figure.log",
    benchmark:
        f"{RUNS}/benchmarks/protein_figure.tsv"
    params:
        samples=protein_sample_dirs,
        python=PYTHON,
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
    shell:
        "{params.python} -m deft.protein.figure --problems {input.problems} --samples {params.samples}"
        " --out {output.figure} --pdb-dir {output.pdbs} > {log} 2>&1"
