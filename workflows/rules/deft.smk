# DEFT on image inverse problems: an unconditional backbone → one h-transform head per task (and an amortised model
# trained from scratch where configured) → reconstructions of the test images by DEFT and every baseline that can
# solve the task → PSNR/SSIM/LPIPS/KID (means with intervals, and every image's scores) and costs → tables: deft_main
# (DEFT and the baselines), deft_paired (DEFT − each baseline image by image) and deft_amortised (the amortised model
# beside DEFT).

include: "helpers/deft.smk"


rule pretrain_uncond:
    input:
        # The pinned source where there is one, so that a rebuilt backbone is compared with its pin on equal terms.
        source=asset("source_dit"),
    output:
        model=directory(f"{RUNS}/uncond/model"),
    log:
        f"{RUNS}/logs/pretrain_uncond.log",
    benchmark:
        f"{RUNS}/benchmarks/pretrain_uncond.tsv"
    params:
        run_dir=subpath(output.model, parent=True),
        steps=DEFT["uncond_steps"],
        # Eight checkpoints, all kept: the points of the backbone's quality curve (rule asset_quality_dit).
        every=max(1, DEFT["uncond_steps"] // 8),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: 1  # one thread: the pinned asset's bytes depend on it (docs/assets.md), and two builds share 2 cores
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "{params.python} -m tunebench.pretrain --scale {params.scale} --set model.pretrained={input.source}"
        " --set train.label_dropout=1.0 --set train.steps={params.steps} --set train.checkpoint_every={params.every}"
        " --set train.checkpoints_keep=1000 --out {params.run_dir} --no-progress > {log} 2>&1"


# Paper scale with paper.adm_checkpoint set: guided-diffusion's 256x256_diffusion_uncond.pt as the diffusers
# UNet2DModel folder DEFT keeps frozen (deft/adm_checkpoint.py). A CPU job: it reads 2.2 GB and writes as much,
# with 3.3 GB of memory at peak.
rule convert_adm:
    input:
        checkpoint=adm_checkpoint,
    output:
        model=directory(ADM_BACKBONE),
    log:
        f"{RUNS}/logs/convert_adm.log",
    benchmark:
        f"{RUNS}/benchmarks/convert_adm.tsv"
    params:
        adm=adm_config_flags(),
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=0,
    shell:
        "{params.python} -m deft.convert_adm --checkpoint {input.checkpoint} --out {output.model} {params.adm}"
        " > {log} 2>&1"


rule deft_train:
    wildcard_constraints:
        task=DEFT_TASK_PATTERN,
    input:
        backbone=DEFT_BACKBONE,
    output:
        head=directory(f"{RUNS}/deft/{{task}}/train/head"),
        summary=f"{RUNS}/deft/{{task}}/train/summary.json",
    log:
        f"{RUNS}/logs/deft_train/{{task}}.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_train/{{task}}.tsv"
    params:
        run_dir=subpath(output.summary, parent=True),
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
        " {params.data} --out {params.run_dir} --no-progress > {log} 2>&1"


rule amortised_train:
    wildcard_constraints:
        task=DEFT_TASK_PATTERN,
    output:
        model=directory(f"{RUNS}/deft/{{task}}/amortised-train/model"),
        summary=f"{RUNS}/deft/{{task}}/amortised-train/summary.json",
    log:
        f"{RUNS}/logs/amortised_train/{{task}}.log",
    benchmark:
        f"{RUNS}/benchmarks/amortised_train/{{task}}.tsv"
    params:
        run_dir=subpath(output.summary, parent=True),
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
        "{params.python} -m deft.amortised --scale {params.scale} --task {wildcards.task} {params.data}"
        " --out {params.run_dir} --no-progress > {log} 2>&1"


rule deft_reconstruct:
    wildcard_constraints:
        method=DEFT_METHOD_PATTERN,
        task=DEFT_TASK_PATTERN,
    input:
        backbone=DEFT_BACKBONE,
        trained=get_deft_trained,
    output:
        recon=f"{RUNS}/deft/{{task}}/{{method}}/recon.npz",
        summary=f"{RUNS}/deft/{{task}}/{{method}}/summary.json",
    log:
        f"{RUNS}/logs/deft_reconstruct/{{task}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_reconstruct/{{task}}/{{method}}.tsv"
    params:
        out_dir=subpath(output.summary, parent=True),
        trained=deft_trained_flag,
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
        " --task {wildcards.task} --method {wildcards.method} {params.trained} {params.data} --out {params.out_dir}"
        " --no-progress > {log} 2>&1"


rule deft_evaluate:
    wildcard_constraints:
        method=DEFT_METHOD_PATTERN,
        task=DEFT_TASK_PATTERN,
    input:
        recon=rules.deft_reconstruct.output.recon,
        train_summary=get_deft_train_summary,
        features=FEATURE_NET,
    output:
        results=f"{RUNS}/metrics/deft_main/{{task}}/{{method}}.csv",
        # Every test image's scores, beside the means: deft_paired and the tables compare methods image by image.
        per_image=f"{RUNS}/metrics/deft_main/{{task}}/{{method}}.per_image.csv",
    log:
        f"{RUNS}/logs/deft_evaluate/{{task}}/{{method}}.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_evaluate/{{task}}/{{method}}.tsv"
    params:
        recon_dir=subpath(input.recon, parent=True),
        train=train_summary_flag,
        extractor=scoring_extractor_flags,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{params.python} -m deft.evaluate --recon {params.recon_dir} {params.train} {params.extractor}"
        " --results {output.results} --per-image {output.per_image} > {log} 2>&1"


rule deft_results:
    input:
        deft_metric_files(deft_pairs()),
    output:
        f"{RESULTS}/deft_main.csv",
    log:
        f"{RUNS}/logs/deft_results.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_results.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --out {output} {input} > {log} 2>&1"


rule deft_table:
    input:
        results=rules.deft_results.output,
        # A best value is bold only where its paired interval against every other method excludes a tie.
        per_image=deft_per_image_files(deft_pairs()),
    output:
        md=report(f"{RESULTS}/tables/deft_main.md", caption="../report/deft_table.rst", category="DEFT"),
        tex=f"{RESULTS}/tables/deft_main.tex",
    log:
        f"{RUNS}/logs/deft_table.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join([*DEFT["baselines"], "deft"]),  # DEFT last, as in the paper's tables
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.report table --results {input.results} --layout deft --out-dir {params.out_dir}"
        " --methods {params.methods} --per-image {input.per_image} > {log} 2>&1"


# DEFT − each baseline on the same test images, image by image, with paired intervals: which differences of the main
# table are more than the spread between images.
rule deft_paired:
    input:
        deft_per_image_files(deft_pairs()),
    output:
        f"{RESULTS}/deft_paired.csv",
    log:
        f"{RUNS}/logs/deft_paired.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_paired.tsv"
    params:
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.paired --per-image {input} --scale {params.scale} --out {output} > {log} 2>&1"


rule deft_paired_table:
    input:
        rules.deft_paired.output,
    output:
        md=report(f"{RESULTS}/tables/deft_paired.md", caption="../report/deft_paired.rst", category="DEFT"),
        tex=f"{RESULTS}/tables/deft_paired.tex",
    log:
        f"{RUNS}/logs/deft_paired_table.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_paired_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        methods=",".join(DEFT["baselines"]),
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.report table --results {input} --layout paired --out-dir {params.out_dir}"
        " --methods {params.methods} > {log} 2>&1"


# The amortised upper bound beside DEFT, apart from deft_main: the main table stays the same whether or not the
# amortised models (target `all`) were trained. Its rows are relabelled experiment deft_amortised, which names the
# table.
rule deft_amortised_results:
    input:
        deft_metric_files(amortised_pairs()),
    output:
        f"{RESULTS}/deft_amortised.csv",
    log:
        f"{RUNS}/logs/deft_amortised_results.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_amortised_results.tsv"
    params:
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m benchmarks.merge_results --experiment deft_amortised --out {output} {input} > {log} 2>&1"


rule deft_amortised_table:
    input:
        results=rules.deft_amortised_results.output,
        per_image=deft_per_image_files(amortised_pairs()),
    output:
        md=report(f"{RESULTS}/tables/deft_amortised.md", caption="../report/deft_amortised.rst", category="DEFT"),
        tex=f"{RESULTS}/tables/deft_amortised.tex",
    log:
        f"{RUNS}/logs/deft_amortised_table.log",
    benchmark:
        f"{RUNS}/benchmarks/deft_amortised_table.tsv"
    params:
        out_dir=subpath(output.md, parent=True),
        python=PYTHON,
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m deft.report table --results {input.results} --layout deft --out-dir {params.out_dir}"
        " --methods amortised,deft --per-image {input.per_image} > {log} 2>&1"
