"""Diff-Tuning settings: defaults are the argparse defaults of the official `thuml/Diffusion-Tuning` `train.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from tunebench.config import ConfigError, RunConfig


@dataclass(frozen=True)
class Objective:
    """What a fine-tuning method does with the batch: mix in the retention set, and draw t from the τ laws."""

    retention: bool
    weighted_t: bool
    description: str


# The method registry (CLI choices). Diff-Tuning is both halves; the two single halves are the paper's ablation.
METHODS: dict[str, Objective] = {
    "full_ft": Objective(False, False, "standard fine-tuning: uniform t, no retention set"),
    "diff_tuning": Objective(True, True, "Diff-Tuning: target t ~ (t+1)^tau, retention t ~ (T-t)^tau, null labels"),
    "retention_only": Objective(True, False, "retention set with uniform t on both parts (ablation)"),
    "tweight_only": Objective(False, True, "target t ~ (t+1)^tau, no retention set (ablation)"),
}
PEFT_METHODS = ("none", "bitfit", "difffit", "lora")


@dataclass
class DiffTuneConfig:
    """The chain-of-forgetting objective and the parameter-efficient variants."""

    method: str = "diff_tuning"  # a key of METHODS
    tau: float = 1.0  # --prob-scale: target P(t) ∝ (t+1)^tau
    tau_retention: float | None = None  # --LWF-prob-scale: retention P(t) ∝ (T-t)^tau_retention; None = tau
    retention_ratio: float = 0.2  # --LWF-ratio: int(32 * 0.2) = 6 retention + 26 target images per batch
    retention_weight: float = 0.1  # --LWF-weight: loss = mean(target) + 0.1 * mean(retention)
    retention: str | None = None  # folder made by `python -m difftune.retention` (needed by retention methods)
    # Replay only the set's first N images (None = all). Seeds are per image, so they are the set a run with
    # --n N would have sampled: the retention-size ablation needs one sampling run.
    retention_size: int | None = None
    peft: str = "none"  # none (all weights), bitfit, difffit or lora
    difffit_blocks: int | None = None  # DiffFit scales in the first N blocks; None = half the blocks (14 of 28)
    lora_rank: int = 8
    lora_alpha: float = 8.0

    def objective(self) -> Objective:
        """The method's objective (validated)."""
        return METHODS[self.method]

    def retention_tau(self) -> float:
        """τ of the retention law (the official default -1 means 'same as tau')."""
        return self.tau if self.tau_retention is None else self.tau_retention


@dataclass
class FineTuneConfig(RunConfig):
    """A fine-tuning run: the core sections plus `difftune`. Train defaults are the paper's (24k steps of 32)."""

    difftune: DiffTuneConfig = field(default_factory=DiffTuneConfig)

    # Its scale settings: the core DiT sizes, then fine-tuning's own steps and EMA (workflows/config/SCALE.yaml).
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("core", "difftune")

    def validate(self) -> None:
        """Check the difftune section, naming the key."""
        check_difftune(self)


@dataclass
class RetentionRunConfig(RunConfig):
    """Sampling the retention set: the core sections plus `retention`, the set's sampler at this scale. The paper
    does not state it (the official code reads a folder of pre-sampled images), so its default is the DiT sampler of
    `sample`; a scale file may choose a cheaper one (workflows/config/mini.yaml)."""

    # Its scale settings: the core DiT sizes, then the retention set's own sampler (workflows/config/SCALE.yaml).
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("core", "retention")


def check_difftune(run: RunConfig) -> None:
    """Check the `difftune` section of a run that trains with the objective (fine-tuning, a ControlNet branch),
    naming the key."""
    d = run.difftune
    if d.method not in METHODS:
        raise ConfigError(f"config key 'difftune.method' is {d.method!r}; choose one of {', '.join(METHODS)}")
    if d.peft not in PEFT_METHODS:
        raise ConfigError(f"config key 'difftune.peft' is {d.peft!r}; choose one of {', '.join(PEFT_METHODS)}")
    if not 0.0 < d.retention_ratio < 1.0:
        raise ConfigError(f"config key 'difftune.retention_ratio' = {d.retention_ratio} must be in (0, 1)")
    if d.objective().retention and retention_count(run) == 0:
        raise ConfigError(f"difftune.retention_ratio={d.retention_ratio} of train.batch_size="
                          f"{run.train.batch_size} gives no retention image; raise one of them")
    for key, value in (("difftune.tau", d.tau), ("difftune.tau_retention", d.retention_tau()),
                       ("difftune.retention_weight", d.retention_weight)):
        if value < 0:
            raise ConfigError(f"config key '{key}' = {value} must be >= 0")
    if d.retention_size is not None and d.retention_size <= 0:
        raise ConfigError(f"config key 'difftune.retention_size' = {d.retention_size} must be positive "
                          "(or null for the whole set)")
    if d.lora_rank <= 0:
        raise ConfigError(f"config key 'difftune.lora_rank' = {d.lora_rank} must be positive")


def retention_count(run: RunConfig) -> int:
    """Retention images per batch: int(batch · ratio), as the official code (32 · 0.2 → 6); 0 without retention."""
    if not run.difftune.objective().retention:
        return 0
    return int(run.train.batch_size * run.difftune.retention_ratio)
