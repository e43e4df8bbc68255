# Helpers of the `assets` target (workflows/rules/assets.smk): what the comparison reads for each rebuilt asset.

# The measured ones (rules asset_quality_*); the feature network's quality is its own meta.json (test accuracy).
MEASURED_ASSETS = [name for name in BUILT_ASSETS if name != "feature_net"]


def asset_comparison_inputs(wildcards):
    """Every rebuilt asset's folder, and the quality.json of each measured one, by name."""
    return {**BUILT_ASSETS, **{f"{name}_quality": f"{RUNS}/assets/{name}/quality.json" for name in MEASURED_ASSETS}}


def asset_comparison_flags(wildcards, input):
    """`tunebench.assets compare` flags: --build NAME=FOLDER --quality NAME=JSON for each asset."""
    quality = {name: input[f"{name}_quality"] for name in MEASURED_ASSETS}
    quality["feature_net"] = f"{input['feature_net']}/meta.json"
    return " ".join(f"--build {name}={input[name]} --quality {name}={quality[name]}" for name in BUILT_ASSETS)
