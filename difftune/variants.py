"""Names of fine-tuning runs: a method, optionally a PEFT method, one config override and a training length, as one
path-safe word.

    diff_tuning                    the method with the scale's defaults (the main comparison)
    diff_tuning+lora               trained through LoRA adapters (the PEFT table)
    diff_tuning@tau=0.5            difftune.tau = 0.5 (an ablation point)
    diff_tuning@retention=source   replaying real source images instead of generated ones (retention ablation)
    diff_tuning@seed=1             training seed 1 (train.seed; a seed replicate of the main comparison)
    diff_tuning@seed=1@steps=4000  ... trained for 4000 steps (train.steps; the fine-tuning-length study)

The workflow names run folders, result rows and figure points with these words; `parse_variant` is the only reader.
"""

from __future__ import annotations

from dataclasses import dataclass

from difftune.config import METHODS, PEFT_METHODS, DiffTuneConfig
from tunebench.config import ConfigError, TrainConfig

# Overridden keys and their types: the ablated keys of the difftune section (`retention` picks the set, generated or
# real source images) and `seed`, the training seed (train.seed) of the seed replicates.
OVERRIDE_KEYS = {"tau": float, "retention_weight": float, "retention_ratio": float, "retention_size": int,
                 "retention": str, "seed": int}
DEFAULT_SEED = TrainConfig().seed  # the training seed of a run whose name gives none (the main comparison's)
STEPS_KEY = "steps"  # the training length (train.steps), the one part that may follow another override
RETENTION_KINDS = ("generated", "source")


@dataclass(frozen=True)
class Variant:
    """A parsed run name."""

    method: str
    peft: str = "none"
    key: str | None = None  # the overridden difftune key, if any
    value: float | int | str | None = None
    steps: int | None = None  # the training length, if the name sets one (else the scale's train.steps)

    @property
    def name(self) -> str:
        """The canonical run name (parse_variant(v.name) == v)."""
        name = self.method if self.peft == "none" else f"{self.method}+{self.peft}"
        if self.key is not None:
            value = f"{self.value:g}" if isinstance(self.value, float) else self.value
            name = f"{name}@{self.key}={value}"
        return name if self.steps is None else f"{name}@{STEPS_KEY}={self.steps}"

    @property
    def seed(self) -> int:
        """The run's training seed (the default unless the name sets one)."""
        return int(self.value) if self.key == "seed" else DEFAULT_SEED

    @property
    def retention_kind(self) -> str:
        """Which retention set the run replays (generated unless the name says source)."""
        return str(self.value) if self.key == "retention" else "generated"

    def set_flags(self) -> list[str]:
        """The fine-tuning CLI's `--set` overrides of this variant (the retention folder is the caller's)."""
        flags = [] if self.steps is None else ["--set", f"train.steps={self.steps}"]
        if self.key is None or self.key == "retention":
            return flags
        section = "train" if self.key == "seed" else "difftune"
        return ["--set", f"{section}.{self.key}={self.value}", *flags]

    def is_default(self, retention_n: int) -> bool:
        """True when the override changes nothing (τ = 1, a size equal to the whole set...): the plain run is it
        (the training length aside, see `plain`)."""
        if self.key is None:
            return True
        if self.key == "retention":
            return self.value == "generated"
        if self.key == "retention_size":
            return self.value == retention_n
        if self.key == "seed":
            return self.value == DEFAULT_SEED
        return self.value == getattr(DiffTuneConfig(), self.key)

    def plain(self, retention_n: int, train_steps: int | None = None) -> Variant:
        """The run whose model this variant is: itself, or without the override when that is a default, and without
        the training length when it equals `train_steps` (the scale's fine-tuning length)."""
        steps = None if self.steps == train_steps else self.steps
        if self.is_default(retention_n):
            return Variant(self.method, self.peft, steps=steps)
        return Variant(self.method, self.peft, self.key, self.value, steps)

    def with_steps(self, steps: int | None) -> Variant:
        """The same run trained for `steps` (None: the scale's length)."""
        return Variant(self.method, self.peft, self.key, self.value, steps)


def parse_variant(name: str) -> Variant:
    """Parse a run name, raising ConfigError that names the part that is wrong."""
    head, _, override = name.partition("@")
    method, _, peft = head.partition("+")
    if method not in METHODS:
        raise ConfigError(f"run name {name!r}: method {method!r} is not one of {', '.join(METHODS)}")
    peft = peft or "none"
    if peft not in PEFT_METHODS or (head.endswith("+none")):
        raise ConfigError(f"run name {name!r}: PEFT method {peft!r} is not one of {', '.join(PEFT_METHODS[1:])}")
    steps = None
    head_override, _, steps_part = override.rpartition("@")
    if steps_part.startswith(f"{STEPS_KEY}="):
        override, text = head_override, steps_part.partition("=")[2]
        if not text.isdigit() or int(text) <= 0:
            raise ConfigError(f"run name {name!r}: {STEPS_KEY} must be a positive integer, got {text!r}")
        steps = int(text)
    if not override:
        return Variant(method, peft, steps=steps)
    key, _, text = override.partition("=")
    if key not in OVERRIDE_KEYS or not text:
        raise ConfigError(f"run name {name!r}: override must be KEY=VALUE with KEY one of {', '.join(OVERRIDE_KEYS)}")
    try:
        value = OVERRIDE_KEYS[key](text)
    except ValueError:
        raise ConfigError(f"run name {name!r}: {key} needs a {OVERRIDE_KEYS[key].__name__}, got {text!r}") from None
    if key == "retention" and value not in RETENTION_KINDS:
        raise ConfigError(f"run name {name!r}: retention must be one of {', '.join(RETENTION_KINDS)}")
    if key == "retention_size" and value <= 0:
        raise ConfigError(f"run name {name!r}: retention_size must be positive")
    if key == "seed" and value < 0:
        raise ConfigError(f"run name {name!r}: seed must be a non-negative integer")
    return Variant(method, peft, key, value, steps)
