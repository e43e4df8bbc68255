"""DEFT settings: defaults are the official `alexdenker/DEFT` values (sources below), scales only override.

Paper defaults, with where they come from:
- h-transform network: guided-diffusion UNet, 64 base channels, multipliers (1, 1, 2, 2, 4, 4), one res-block per
  level, attention at 32 and 16 px, head width 16, scale-shift norm and res-block up/down sampling, NN2's last bias
  0.001 (`_configs/htransform_model/imagenet256_htransform.yaml`, the config `run_commands.md` trains with; the
  July 2024 `configs/default_config.py` had bias 0.01, the deepinv port 1.0).
- Training: Adam, batch 16, lr 5e-4 decayed linearly to 0, 200 epochs of 1000 images = 12,400 steps with
  drop_last, EMA 0.999 from update 400 every 10 updates (`run_commands.md` SR×4 replication, `deft.yaml`).
- Sampling: DDIM, 100 leading steps, η = 1 (replication command), no x̂0 clipping, non-EMA weights (`master`
  samples with the trained weights unless `use_ema`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from deft.operators.task_settings import TaskConfig, check_task
from tunebench.config import ConfigError, RunConfig, SampleConfig, TrainConfig

HEAD_BLOCKS = ("scale_shift", "diffusers_default")  # head.block: the keys of `deft.head.BLOCKS` (a test checks)
# The values of the baselines' protocol switches, the default first (docs/deft.md, "Deviations from the official code").
BASELINE_CHOICES = {"protocol": ("paper", "run_commands"), "start": ("official", "pinv_only"),
                    "pigdm_form": ("pinv", "noisy"), "ddrm_threshold": ("strict", "inclusive")}


def _paper_train() -> TrainConfig:
    """DEFT's optimiser: Adam (AdamW with no decay), batch 16, lr 5e-4 linearly to 0, EMA 0.999 from 400 every 10."""
    return TrainConfig(steps=12400, batch_size=16, lr=5e-4, weight_decay=0.0, ema_decay=0.999, ema_warmup=False,
                       lr_schedule="linear", ema_start=400, ema_every=10, label_dropout=0.0, checkpoint_every=1000)


def _paper_sample() -> SampleConfig:
    """DEFT's sampler: DDIM, 100 leading steps, η = 1, x̂0 never clipped."""
    return SampleConfig(sampler="ddim", steps=100, eta=1.0, guidance_scale=1.0, guided_channels=None, clip_x0=False,
                        batch_size=50, compute_chunk=16)


@dataclass
class HeadConfig:
    """The h-transform network NN1 (a small UNet) and NN2 (a time MLP scaling the likelihood gradient)."""

    base_channels: int = 64
    channel_mult: str = "1,1,2,2,4,4"  # comma list, one entry per resolution level
    layers_per_block: int = 1
    attention_resolutions: str = "32,16"  # feature-map sides (px) that get self-attention; "" = none
    attention_head_dim: int = 16
    norm_groups: int = 32
    init_scaling_bias: float = 0.001  # NN2's output bias at initialisation (its weight starts at 0; yaml line 12)
    block: str = "scale_shift"  # NN1's res-blocks: "scale_shift" (the official scale-shift norm and res-block
    # up/down sampling, yaml lines 22 and 28) or "diffusers_default" (additive time embedding, conv resampling)
    use_x0hat: bool = True  # ablation switches of the official code (`use_x0hat`, `use_loggrad`, `use_residual`)
    use_loggrad: bool = True  # False feeds Aᵀy (A†y for non-linear A) instead of the likelihood gradient
    use_residual: bool = True  # the −NN2(t)·g branch

    def multipliers(self) -> list[int]:
        """`channel_mult` as integers."""
        return _int_list(self.channel_mult, "head.channel_mult")

    def attention_sides(self) -> list[int]:
        """`attention_resolutions` as integers."""
        return _int_list(self.attention_resolutions, "head.attention_resolutions") if self.attention_resolutions else []


@dataclass
class DeftData:
    """Which images DEFT fine-tunes on and which it is tested on (paper: 1000 and 1000 disjoint ImageNet val images)."""

    finetune_split: str = "train"  # paper scale: DATA_ROOT/train holds the fine-tuning images
    test_split: str = "test"
    finetune_images: int = 1000  # every 10th of imagenet_10k.txt
    test_images: int = 1000  # dgp_top1k.txt
    subset_seed: int = 0  # which images (a seeded permutation of the split; disjoint slices if both splits agree)


@dataclass
class BaselineSettings:
    """Scale-wide settings of the baselines (per-task step sizes: each `deft.baselines` module's `TASK_SETTINGS`)."""

    steps: int | None = None  # None: each method's published count (DPS/RED-diff 1000, ΠGDM/DDNM 100, DDRM 20)
    # "paper": the step counts the DEFT paper states; "run_commands": DEFT's `run_commands.md` RED-diff SR×4 command
    # (100 steps; each module's RUN_COMMANDS)
    protocol: str = "paper"
    start: str = "official"  # DPS/ΠGDM/RED-diff start from the official H_pinv(y) (`Operator.rough_inverse`:
    # phase retrieval's |F⁻¹y|, the blur of y) or, "pinv_only", from A†y only where it exists (else noise / zeros)
    pigdm_form: str = "pinv"  # ΠGDM: the official A†(y − A x̂0) with its inpainting and HDR terms, or "noisy"
    # (r²Aᵀ(r²AAᵀ + σ²I)⁻¹(y − A x̂0), neither term)
    ddrm_threshold: str = "strict"  # DDRM trusts ȳ where s·σ_s > σ_y (official, strict) or ≥ ("inclusive")


@dataclass
class DeftConfig(RunConfig):
    """A DEFT run: the core sections (model.pretrained = the frozen backbone folder) plus task, head and images."""

    train: TrainConfig = field(default_factory=_paper_train)
    sample: SampleConfig = field(default_factory=_paper_sample)
    task: TaskConfig = field(default_factory=TaskConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    images: DeftData = field(default_factory=DeftData)
    baselines: BaselineSettings = field(default_factory=BaselineSettings)

    # Its scale settings: the core DiT sizes, DEFT's task and image settings, then the head's training
    # (workflows/config/SCALE.yaml).
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("core", "deft", "deft_head")

    def validate(self) -> None:
        """Check the DEFT sections, naming the key."""
        check_task(self.task)
        h, d = self.head, self.images
        mult = h.multipliers()
        if not mult or min(mult) <= 0:
            raise ConfigError(f"config key 'head.channel_mult' = {h.channel_mult!r} must list positive integers")
        h.attention_sides()
        for key, value in (("head.base_channels", h.base_channels), ("head.layers_per_block", h.layers_per_block),
                           ("head.norm_groups", h.norm_groups), ("images.finetune_images", d.finetune_images),
                           ("images.test_images", d.test_images)):
            if value <= 0:
                raise ConfigError(f"config key '{key}' = {value} must be positive")
        if h.base_channels % h.norm_groups:
            raise ConfigError(f"config key 'head.norm_groups' = {h.norm_groups} must divide head.base_channels "
                              f"= {h.base_channels}")
        if h.block not in HEAD_BLOCKS:
            raise ConfigError(f"config key 'head.block' is {h.block!r}; choose one of {', '.join(HEAD_BLOCKS)}")
        for key, options in BASELINE_CHOICES.items():
            if getattr(self.baselines, key) not in options:
                raise ConfigError(f"config key 'baselines.{key}' is {getattr(self.baselines, key)!r}; choose one of "
                                  f"{', '.join(options)}")
        if self.baselines.steps is not None and not 1 <= self.baselines.steps <= self.diffusion.num_train_timesteps:
            raise ConfigError(f"config key 'baselines.steps' = {self.baselines.steps} must be in "
                              f"[1, {self.diffusion.num_train_timesteps}] or null")
        if self.sample.sampler != "ddim":
            raise ConfigError(f"config key 'sample.sampler' is {self.sample.sampler!r}; DEFT samples with 'ddim'")


@dataclass
class AmortisedConfig(DeftConfig):
    """DEFT's task and image settings with the backbone's pre-training recipe (TrainConfig defaults + scale)."""

    train: TrainConfig = field(default_factory=TrainConfig)

    # DEFT's task and image settings, then the amortised model's training instead of the head's.
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("core", "deft", "deft_amortised")


def _int_list(text: str, key: str) -> list[int]:
    """Parse '1,2,4' into [1, 2, 4], naming `key` on failure."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"config key '{key}' = {text!r} must be a comma-separated list of integers") from None
