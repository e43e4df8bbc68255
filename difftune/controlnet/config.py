"""ControlNet-training settings: the condition, the branch depth, the fidelity evaluation and its convergence
threshold. The official Diff-Tuning code has no ControlNet part (docs/difftune.md), so the paper-scale values
here are assumptions, stated as such; mini and smoke only shrink them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from tunebench.config import ConfigError, RunConfig

# The conditions `difftune.controlnet.conditions` computes, and their channels, as plain data: it imports
# scikit-image, which the CLI's --help should not wait for.
CONDITIONS = ("canny", "blur", "lowres", "segmentation", "inpaint")
CHANNELS = {"canny": 1, "blur": 3, "lowres": 3, "segmentation": 1, "inpaint": 4}

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
    """A ControlNet run on a frozen base: the core sections plus `control`. Paper: 15k steps of 32 (an assumption)."""

    control: ControlConfig = field(default_factory=ControlConfig)

    # Its scale settings: the core DiT sizes, then the branch's own steps and probes (workflows/config/SCALE.yaml).
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("core", "controlnet")

    def validate(self) -> None:
        """Check the control section, naming the key."""
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
