# The `deft_protocol` target: what each of DEFT's protocol switches (docs/deft.md, "Deviations from the official
# code"; config deft_protocol) changes. Each switched run (DEFT with a head trained under the switch, or a baseline on
# the same measurements) beside the default run of its method and task: the main study's run where it makes it
# (workflows/rules/deft.smk), else a default run made here → results/SCALE/deft_protocol.csv and
# tables/deft_protocol.md. Not part of the tiers: snakemake ... deft_protocol

include: "helpers/deft_protocol.smk"


rule deft_protocol_train:
    wildcard_constraints:
        task="|".join(TASK_PRESETS),
        label=PROTOCOL_LABEL_PATTERN,
    input:
        backbone=DEFT_BACKBONE,
    output:
        head=directory(f"{RUNS}/deft_protocol/{{task}}/{{label}}/train/head"),
        summary=f"{RUNS}/deft_protocol/{{task}}/{{label}}/train/summary.json",
    log:
        f"{RUNS}/logs/deft_protocol_train/{{task}}/{{label}}.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_protocol_train/{{task}}/{{label}}.tsv"
    params:
        run_dir=subpath(output.summary, parent=True),
        overrides=protocol_overrides,
        data=deft_data_flag(),
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
        "{params.python} -m deft.train --scale {params.scale} --backbone {input.backbone} --task {wildcards.task}"
        " {params.overrides} {params.data} --out {params.run_dir} --no-progress > {log} 2>&1"


rule deft_protocol_reconstruct:
    wildcard_constraints:
        task="|".join(TASK_PRESETS),
        label=PROTOCOL_LABEL_PATTERN,
        method=PROTOCOL_METHOD_PATTERN,
    input:
        backbone=DEFT_BACKBONE,
        trained=get_protocol_head,
    output:
        recon=f"{RUNS}/deft_protocol/{{task}}/{{label}}/{{method}}/recon.npz",
        summary=f"{RUNS}/deft_protocol/{{task}}/{{label}}/{{method}}/summary.json",
    log:
        f"{RUNS}/logs/deft_protocol_reconstruct/{{task}}/{{label}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_protocol_reconstruct/{{task}}/{{label}}/{{method}}.tsv"
    params:
        out_dir=subpath(output.summary, parent=True),
        # the head's switch again: deft.reconstruct refuses a head trained under other task settings
        overrides=protocol_overrides,
        trained=protocol_head_flag,
        data=deft_data_flag(),
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
        "{params.python} -m deft.reconstruct --scale {params.scale} --backbone {input.backbone}"
        " --task {wildcards.task} {params.overrides} --method {wildcards.method} {params.trained} {params.data}"
        " --out {params.out_dir} --no-progress > {log} 2>&1"


rule deft_protocol_evaluate:
    wildcard_constraints:
        task="|".join(TASK_PRESETS),
        label=PROTOCOL_LABEL_PATTERN,
        method=PROTOCOL_METHOD_PATTERN,
    input:
        recon=rules.deft_protocol_reconstruct.output.recon,
        train_summary=get_protocol_train_summary,
        features=FEATURE_NET,
    output:
        results=f"{RUNS}/metrics/deft_protocol/{{task}}/{{label}}/{{method}}.csv",
        # Every test image's scores: deft_protocol_paired pairs each switched run with its default image by image.
        per_image=f"{RUNS}/metrics/deft_protocol/{{task}}/{{label}}/{{method}}.per_image.csv",
    log:
        f"{RUNS}/logs/deft_protocol_evaluate/{{task}}/{{label}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_protocol_evaluate/{{task}}/{{label}}/{{method}}.tsv"
    params:
        recon_dir=subpath(input.recon, parent=True),
        train=train_summary_flag,
        extractor=scoring_extractor_flags,
        experiment=PROTOCOL_EXPERIMENT,
        row=protocol_row_flags,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{params.python} -m deft.evaluate --recon {params.recon_dir} {params.train} {params.extractor}"
        " --experiment {params.experiment} {params.row} --results {output.results} --per-image {output.per_image}"
        " > {log} 2>&1"


# Each switched run − its default, image by image on the same test images, with paired intervals.
rule deft_protocol_paired:
    input:
        protocol_per_image_files(),
    output:
        f"{RUNS}/metrics/deft_protocol_paired.csv",
    log:
        f"{RUNS}/logs/deft_protocol_paired.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_protocol_paired.tsv"
    params:
        experiment=PROTOCOL_EXPERIMENT,
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.paired --per-image {input} --protocol-switches"
        " --experiment {params.experiment} --scale {params.scale} --out {output} > {log} 2>&1"


# The defaults' rows, the switched runs' and their paired differences as one experiment (the main study's rows are
# relabelled): one table.
rule deft_protocol_results:
    input:
        protocol_metric_files(),
        rules.deft_protocol_paired.output,
    output:
        f"{RESULTS}/deft_protocol.csv",
    log:
        f"{RUNS}/logs/deft_protocol_results.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_protocol_results.tsv"
    params:
        experiment=PROTOCOL_EXPERIMENT,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --experiment {params.experiment} --out {output} {input}"
        " > {log} 2>&1"


rule deft_protocol_table:
    input:
        rules.deft_protocol_results.output,
    output:
        md=f"{RESULTS}/tables/deft_protocol.md",
        tex=f"{RESULTS}/tables/deft_protocol.tex",
    log:
        f"{RUNS}/logs/deft_protocol_table.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_protocol_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.report table --results {input} --layout protocol --out-dir {params.out_dir}"
        " > {log} 2>&1"


# Measure every protocol switch of config deft_protocol: snakemake ... deft_protocol
rule deft_protocol:
    input:
        deft_protocol_outputs(),
