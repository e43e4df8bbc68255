# Helpers of the feature extractor behind FID/KID (workflows/rules/features.smk), shared by the Diff-Tuning and DEFT
# scoring rules: the local feature network at mini/smoke, Inception weights (a local file) at paper scale.

# The feature network the scoring rules read (none at paper scale).
FEATURE_NET = [] if PAPER_SCALE else [asset("feature_net")]


def reference_extractor_flags(wildcards, input):
    """`benchmarks.fid ref` flags that choose the feature extractor of the comparison."""
    if PAPER_SCALE:
        return f"--extractor inception --inception-weights {PAPER['inception_weights']}"
    return f"--extractor local --features {input.features}"


def scoring_extractor_flags(wildcards, input):
    """Flags of the scoring CLIs (`benchmarks.fid calc`, `difftune.forgetting`, `deft.evaluate`): where the
    extractor's weights are."""
    if PAPER_SCALE:
        return f"--inception-weights {PAPER['inception_weights']}"
    return f"--features {input.features}"


def features_outputs():
    """The feature network when the DAG builds it (smoke); the reference statistics are each study's."""
    return FEATURE_NET if built_by_dag("feature_net") else []
