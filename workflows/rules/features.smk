# The local feature network (fid_local/kid_local; mini and smoke) and the reference statistics of every downstream
# dataset (local features, or Inception at paper scale).

include: "helpers/features.smk"


rule feature_net:
    output:
        directory(f"{RUNS}/features"),
    log:
        f"{RUNS}/logs/feature_net.log",
    benchmark:
        f"{RUNS}/benchmarks/feature_net.tsv"
    params:
        epochs=config["features"]["epochs"],
        max_per_class=config["features"]["max_per_class"],
        resolution=RESOLUTION,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: 1  # one thread: the pinned asset's bytes depend on it (docs/assets.md), and two builds share 2 cores
    resources:
        mem_mb=6000,
        runtime=20,
    shell:
        "{params.python} -m benchmarks.features --out {output} --epochs {params.epochs}"
        " --max-per-class {params.max_per_class} --resolution {params.resolution} > {log} 2>&1"


rule fid_reference:
    input:
        features=FEATURE_NET,
    output:
        directory(f"{RUNS}/fid-refs/{{dataset}}"),
    log:
        f"{RUNS}/logs/fid_reference/{{dataset}}.log",
    benchmark:
        f"{RUNS}/benchmarks/fid_reference/{{dataset}}.tsv"
    params:
        extractor=reference_extractor_flags,
        root=dataset_root_flag,
        resolution=RESOLUTION,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: JOB_THREADS
    resources:
        mem_mb=4000,
        runtime=10,
    shell:
        "{params.python} -m benchmarks.fid ref --dataset {wildcards.dataset} {params.root} --split train"
        " {params.extractor} --resolution {params.resolution} --out-dir {output} > {log} 2>&1"
