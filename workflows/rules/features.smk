# The local feature network (fid_local/kid_local) and the reference statistics of every downstream dataset.


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
    threads: 2
    resources:
        mem_mb=6000,
        runtime=20,
        gpu=0,
    shell:
        "{params.python} -m benchmarks.features --out {output} --epochs {params.epochs}"
        " --max-per-class {params.max_per_class} --resolution {params.resolution} > {log} 2>&1"


rule fid_reference:
    input:
        features=rules.feature_net.output,
    output:
        directory(f"{RUNS}/fid-refs/{{dataset}}"),
    log:
        f"{RUNS}/logs/fid_reference/{{dataset}}.log",
    benchmark:
        f"{RUNS}/benchmarks/fid_reference/{{dataset}}.tsv"
    params:
        resolution=RESOLUTION,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=10,
        gpu=0,
    shell:
        "{params.python} -m benchmarks.fid ref --dataset {wildcards.dataset} --split train --extractor local"
        " --features {input.features} --resolution {params.resolution} --out-dir {output} > {log} 2>&1"
