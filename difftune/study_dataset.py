"""The one downstream dataset of the single-dataset studies (the chain-of-forgetting curve, the ablations, ControlNet
convergence), picked by a rule the workflow config declares (`difftune.study_dataset`) and applied to the dataset
registry while planning, so the choice is fixed before any result exists and never follows one.

Torch-free: the DAG's planning imports it.
"""

from __future__ import annotations

from tunebench.config import ConfigError
from tunebench.dataset_registry import DATASETS

# Rule → what it picks from difftune.datasets (in the config's order).
STUDY_DATASET_RULES = {
    "largest": "the dataset with the most training images in the registry (the first listed of a tie)",
    "first": "the first dataset listed",
}


def study_dataset(rule: str, datasets: list[str]) -> str:
    """The dataset that `rule` (a key of STUDY_DATASET_RULES) picks from `datasets` (difftune.datasets)."""
    if rule not in STUDY_DATASET_RULES:
        choices = "; ".join(f"{name}: {meaning}" for name, meaning in STUDY_DATASET_RULES.items())
        raise ConfigError(f"config key 'difftune.study_dataset' is {rule!r}, not a rule; choose one of {choices}")
    if not datasets:
        raise ConfigError("config key 'difftune.datasets' is empty: there is no dataset to study")
    if rule == "first":
        return datasets[0]
    unsized = [name for name in datasets if name not in DATASETS or DATASETS[name].train_images is None]
    if unsized:
        raise ConfigError(f"config key 'difftune.study_dataset': rule 'largest' needs each dataset's training-image "
                          f"count from the registry (tunebench.dataset_registry), which {unsized} lack (folders "
                          "read only at run time); use the rule 'first'")
    # max keeps the first of equal counts, so a tie goes to the dataset listed first.
    return max(datasets, key=lambda name: DATASETS[name].train_images)
