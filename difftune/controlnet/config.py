"""ControlNet-training settings: the objective, the condition, the branch depth, the fidelity evaluation and its
convergence threshold. The official Diff-Tuning code has no ControlNet part (docs/difftune.md), so the paper-scale
values here are assumptions, stated as such; mini and smoke only shrink them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from difftune.config import DiffTuneConfig, check_difftune
from tunebench.config import ConfigError, RunConfig

# The conditions `difftune.controlnet.conditions` computes, and their channels, as plain data: it imports
# scikit-image, which the CLI's --help should not wait for.
CONDITIONS = ("canny", "blur", "lowres", "segmentation", "inpaint")
CHANNELS = {"canny": 1, "blur": 3, "lowres": 3, "segmentation": 1, "inpaint": 4}
ALL_CONDITIONS = "all"  # the condition name of a summary over every condition (the acceleration's)
# The objectives a branch trains with, each the difftune.method it runs (difftune.config.METHODS). The paper
# trains ControlNet on one pre-trained model with either: the standard loss (uniform t, no retention set) or
# Diff-Tuning's (target t ∝ (t+1)^τ plus the retention loss at the mirrored law).
OBJECTIVES = {"standard": "full_ft", "diff_tuning": "diff_tuning"}


@dataclass
class ControlConfig:
    """What the branch sees and how its control fidelity is scored during training."""

    condition: str = "canny"  # one of CONDITIONS
    num_blocks: int | None = None  # copied blocks; None = half the base's blocks (PixArt-δ: 13 of 28)
    eval_images: int = 64  # held-out images whose conditions are scored at every checkpoint (seeds 0..N-1)
    eval_sample_steps: int = 50  # sampler steps of those samples (guidance 1: the condition is the guidance)
    # Sudden-convergence threshold of the fidelity score; None = difftune.controlnet.conditions.convergence_threshold
    # (relative
    # to the chance score of the probe images, so one rule fits every condition and dataset).
    threshold: float | None = None


@dataclass
class ControlTrainConfig(RunConfig):
    """A ControlNet run on a frozen base: the core sections plus `control` and the objective's `difftune` section
    (the standard objective by default). Paper: 15k steps of 32 (an assumption)."""

    control: ControlConfig = field(default_factory=ControlConfig)
    difftune: DiffTuneConfig = field(default_factory=lambda: DiffTuneConfig(method=OBJECTIVES["standard"]))

    # Its scale settings: the core DiT sizes, then the branch's own steps and probes (workflows/config/SCALE.yaml).
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("core", "controlnet")

    def objective(self) -> str:
        """The objective's name (a key of OBJECTIVES) of difftune.method."""
        return next(name for name, method in OBJECTIVES.items() if method == self.difftune.method)

    def validate(self) -> None:
        """Check the control and difftune sections, naming the key."""
        check_difftune(self)
        d = self.difftune
        if d.method not in OBJECTIVES.values() or d.peft != "none":
            choices = ", ".join(f"{method} ({name})" for name, method in OBJECTIVES.items())
            raise ConfigError(f"config key 'difftune.method' is {d.method!r} with difftune.peft {d.peft!r}; a "
                              f"ControlNet branch trains all its weights with one of {choices}")
        c = self.control
        if c.condition not in CONDITIONS:
            raise ConfigError(f"config key 'control.condition' is {c.condition!r}; choose one of "
                              f"{', '.join(CONDITIONS)}")
        if c.num_blocks is not None and c.num_blocks <= 0:
            raise ConfigError(f"config key 'control.num_blocks' = {c.num_blocks} must be positive (or null)")
        for key, value in (("control.eval_images", c.eval_images), ("control.eval_sample_steps", c.eval_sample_steps)):
            if value <= 0:
                raise ConfigError(f"config key '{key}' = {value} must be positive")
        if self.data.hflip:
            raise ConfigError("config key 'data.hflip' must be false for ControlNet runs: conditions are computed "
                              "on the unflipped images")
        if self.data.latents:
            raise ConfigError("config key 'data.latents' is not supported for ControlNet runs: each batch's "
                              "conditions are computed from its pixels; unset it (the VAE encodes the batches)")
