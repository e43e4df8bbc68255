"""The downstream datasets of the studies that do not run on every dataset (the chain-of-forgetting curve, the
ablations and ControlNet convergence on one, the fine-tuning-length study on a few), picked by a rule the workflow
config declares (`difftune.study_dataset`, `difftune.regime.datasets`) and applied to the dataset registry while
planning, so the choice is fixed before any result exists and never follows one.

Torch-free: the DAG's planning imports it.
"""

from __future__ import annotations

from tunebench.config import ConfigError
from tunebench.dataset_registry import DATASETS

# Rule → what it picks from difftune.datasets (in the config's order).
STUDY_DATASET_RULES = {
    "largest": "the datasets with the most training images in the registry (the first listed of a tie)",
    "first": "the first datasets listed",
}


def study_datasets(rule: str, datasets: list[str], count: int, key: str = "difftune.study_dataset") -> list[str]:
    """The `count` datasets that `rule` (a key of STUDY_DATASET_RULES) picks from `datasets` (difftune.datasets),
    in the rule's order (largest first for 'largest'); `key` names the config key in errors."""
    if rule not in STUDY_DATASET_RULES:
        choices = "; ".join(f"{name}: {meaning}" for name, meaning in STUDY_DATASET_RULES.items())
        raise ConfigError(f"config key {key!r} is {rule!r}, not a rule; choose one of {choices}")
    if not datasets:
        raise ConfigError("config key 'difftune.datasets' is empty: there is no dataset to study")
    if not 1 <= count <= len(datasets):
        raise ConfigError(f"config key {key!r}: cannot pick {count} of the {len(datasets)} datasets of "
                          "difftune.datasets")
    if rule == "first":
        return datasets[:count]
    unsized = [name for name in datasets if name not in DATASETS or DATASETS[name].train_images is None]
    if unsized:
        raise ConfigError(f"config key {key!r}: rule 'largest' needs each dataset's training-image count from the "
                          f"registry (tunebench.dataset_registry), which {unsized} lack (folders read only at run "
                          "time); use the rule 'first'")
    # sorted is stable, so a tie goes to the dataset listed first.
    return sorted(datasets, key=lambda name: -DATASETS[name].train_images)[:count]


def study_dataset(rule: str, datasets: list[str]) -> str:
    """The dataset that `rule` (a key of STUDY_DATASET_RULES) picks from `datasets` (difftune.datasets)."""
    return study_datasets(rule, datasets, 1)[0]
