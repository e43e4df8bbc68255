# Helpers of the latent cache (workflows/rules/latents.smk; paper scale, difftune.cache_latents): fine-tuning reads
# each dataset's VAE posteriors from a cache made once by rule cache_latents.

CACHE_LATENTS = config["difftune"]["cache_latents"]


def check_latent_cache():
    """A latent cache needs a VAE, which only the paper scale has."""
    if CACHE_LATENTS and not PAPER_SCALE:
        raise WorkflowError(f"config key 'difftune.cache_latents' is true at scale {SCALE}, which trains in pixel "
                            "space (no VAE to cache); set it to false")


check_latent_cache()


def get_latents(wildcards):
    """The latent cache a fine-tuning run reads: its dataset's (difftune.cache_latents), else none. Its age does not
    count (`ancient`): a re-made cache gives the same latents, so it must not rerun the models trained from it."""
    return [ancient(f"{RUNS}/latents/{wildcards.dataset}.safetensors")] if CACHE_LATENTS else []


def latents_flag(wildcards, input):
    """The fine-tuning CLI's data.latents override for that cache."""
    return f"--set data.latents={input.latents}" if input.latents else ""
