# Paper scale (difftune.cache_latents): the VAE posteriors of each fine-tuning dataset's train split, both flips,
# encoded once, so that every fine-tuning run on it samples latents instead of encoding each batch.

include: "helpers/latents.smk"


rule cache_latents:
    input:
        vae=PRETRAINED,
    output:
        latents=f"{RUNS}/latents/{{dataset}}.safetensors",
        provenance=f"{RUNS}/latents/{{dataset}}.json",
    log:
        f"{RUNS}/logs/cache_latents/{{dataset}}.log",
    benchmark:
        f"{RUNS}/benchmarks/cache_latents/{{dataset}}.tsv"
    params:
        root=dataset_root_flag,
        vae=vae_flag(),
        scale=SCALE,
        python=PYTHON,
    conda:
        CONDA_ENV
    threads: 8
    resources:
        # the cache is held in memory until written (4.6 GiB for food101's 75,750 images), and once more to write it
        mem_mb=16000,
        runtime=60,
        gpu=1,
    shell:
        "{params.python} -m tunebench.latents --scale {params.scale} --dataset {wildcards.dataset} {params.root}"
        " {params.vae} --workers {threads} --out {output.latents} --no-progress > {log} 2>&1"
