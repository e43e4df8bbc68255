"""Typed settings for every run: dataclass defaults are the papers' values, scales and YAML files only override."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import yaml

# Number formats of sampling and inference (tunebench.speed): strict fp32, fp32 with TF32 matmuls (DiT's sample.py),
# bf16 autocast.
PRECISIONS = ("fp32", "tf32", "bf16")
TRACKERS = ("tensorboard", "wandb", "none")  # train.log_with


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message names the key and the fix."""


#################################################################################
#                         Settings (defaults = paper values)                    #
#################################################################################


# The timestep spacings of the DDIM/DDPM step lists (their functions: tunebench.schedule.SPACINGS); named here, where
# settings are validated without importing torch.
SPACING_NAMES = ("leading", "respaced", "quadratic")


@dataclass
class ModelConfig:
    """DiT architecture; defaults are DiT-XL/2 at 256 px (32×32×4 VAE latents), as in `facebook/DiT-XL-2-256`."""

    sample_size: int = 32  # side of the model input (latent side at paper scale, pixel side at mini)
    patch_size: int = 2
    in_channels: int = 4
    num_layers: int = 28
    num_heads: int = 16
    head_dim: int = 72
    num_classes: int = 1000  # label table has num_classes + 1 rows; the null (unconditional) class is num_classes
    learn_sigma: bool = True  # DiT predicts the variance too: out_channels = 2 * in_channels, trained with the VLB term
    norm_eps: float = 1e-6  # original DiT uses 1e-6 in both block norms (diffusers defaults to 1e-5)
    pretrained: str | None = None  # local save_pretrained folder (or cached hub id) to start from; None = random init
    vae: str | None = None  # local AutoencoderKL folder; None = the model works in pixel space
    vae_scaling: float = 0.18215  # latent = VAE sample * scaling (Stable Diffusion VAE convention used by DiT)


@dataclass
class DiffusionConfig:
    """Noise schedule of DiT / ADM: 1000 linear-beta steps, epsilon prediction."""

    num_train_timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02


@dataclass
class DataConfig:
    """Which images to train on and how they are shaped."""

    dataset: str = "source"
    root: str | None = None  # folder for ImageFolder datasets at paper scale
    resolution: int = 256
    channels: int = 3
    hflip: bool = True  # random horizontal flip (DiT / ADM augmentation)
    # A latent cache of the train split (`python -m tunebench.latents`): the VAE posteriors of every image, both
    # flips, so training samples latents without encoding; None = encode each batch (model.vae runs only).
    latents: str | None = None


@dataclass
class TrainConfig:
    """Optimisation; defaults are the Diff-Tuning fine-tuning recipe (AdamW 1e-4, batch 32, EMA 0.9999, 24k steps)."""

    steps: int = 24000
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    ema_decay: float = 0.9999
    ema_warmup: bool = False  # decay min(ema_decay, (1+s)/(10+s)) as diffusers' EMAModel; DiT uses a fixed decay
    ema_start: int = 0  # the EMA copies the weights until this update, then averages (DEFT: 400)
    ema_every: int = 1  # average every N updates (DEFT: 10)
    lr_schedule: str = "constant"  # "constant" (DiT, Diff-Tuning) or "linear": decay to 0 at train.steps (DEFT)
    label_dropout: float = 0.1  # classifier-free guidance: drop the label once per sample; 1 = unconditional training
    mixed_precision: str = "no"  # "no" or "bf16"
    tf32: bool = True  # DiT's train.py enables TF32 matmuls on Ampere+
    gradient_checkpointing: bool = False  # recompute each block's activations in the backward (less memory, +1 forward)
    compile: bool = False  # torch.compile the model's forward (in place; checkpoints keep their names)
    seed: int = 0
    log_every: int = 100
    # The training curves' tracker (accelerate's): "tensorboard" (event files in OUT/tracking/, offline), "wandb"
    # (when installed; offline unless WANDB_MODE says otherwise) or "none". Every log_every steps: the losses, the
    # learning rate, steps/s and the EMA decay of that update.
    log_with: str = "tensorboard"
    checkpoint_every: int = 1000
    checkpoints_keep: int = 2


@dataclass
class SampleConfig:
    """Sampling protocol; defaults are DiT's `sample_ddp.py` (250 DDPM steps, CFG 1.5 on 3 of 4 latent channels)."""

    sampler: str = "ddpm"  # "ddpm" (learned variance, DiT respacing) or "ddim"
    steps: int = 250
    guidance_scale: float = 1.5
    guided_channels: int | None = 3  # DiT guides only the first 3 latent channels; None = all channels
    eta: float = 0.0  # DDIM stochasticity
    # Clip x̂0 to [-1, 1] at every step. DiT samples unbounded VAE latents with clip_denoised=False; pixel-space
    # models (the mini and smoke scales) clip as ADM does, which keeps ε errors at high noise (amplified by
    # 1/sqrt(ᾱ_t), ~150 at t=999) from saturating images.
    clip_x0: bool = False
    batch_size: int = 32
    compute_chunk: int = 32  # the model always runs on this many rows (padded), so images do not depend on batch size
    precision: str = "tf32"  # "fp32", "tf32" (fp32 with TF32 matmuls on CUDA, DiT's sample.py) or "bf16" autocast
    compile: bool = False  # torch.compile the model's forward before sampling


@dataclass
class RunConfig:
    """Everything a run needs; saved resolved beside every output and inside every checkpoint."""

    scale: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    # The sections of a scale's settings (`scale_settings`) this config applies, in order; a method package's
    # subclass adds its own after "core" (e.g. fine-tuning steps differ from pre-training steps at the same scale).
    SCALE_SECTIONS: ClassVar[tuple[str, ...]] = ("core",)

    def validate(self) -> None:
        """Cross-field checks of a subclass's own sections (the core sections are checked by `resolve`)."""


#################################################################################
#                    Scales: overrides of the paper defaults                    #
#################################################################################

# smoke: seconds-long runs for tests; mini: the CPU reproduction; paper: the papers' models on GPUs.
SCALE_NAMES = ("paper", "mini", "smoke")
# Each scale's settings are the `settings` mapping of its workflow config, SETTINGS_DIR/<scale>.yaml: one section
# per stage, each overriding the paper defaults. The package runs from a clone, so the folder is the clone's.
SETTINGS_DIR = Path(__file__).resolve().parents[1] / "workflows" / "config"


def settings_file(scale: str) -> Path:
    """The workflow config holding `scale`'s settings."""
    return SETTINGS_DIR / f"{scale}.yaml"


# A rehearsal (workflows/config/rehearsal.yaml, docs/workflow.md "Rehearsal"): the workflow config that runs the
# paper DAG on stand-in inputs. The workflow names it in this variable for its jobs (workflows/rules/common.smk), so
# that every CLI applies its `settings` over the scale's and every results row says it is a rehearsal
# (benchmarks.results). The CLIs read the scale's file by name, so a --configfile alone could not reach them.
REHEARSAL_ENV = "TUNEBENCH_REHEARSAL"


def rehearsal_file() -> Path | None:
    """The rehearsal config this process runs under ($TUNEBENCH_REHEARSAL), or None for a real run."""
    path = os.environ.get(REHEARSAL_ENV)
    return Path(path) if path else None


def scale_settings(scale: str) -> dict[str, dict]:
    """The `settings` mapping of `scale`'s workflow config: section name -> overrides of the paper defaults; under a
    rehearsal, with the rehearsal file's `settings` merged over it key by key."""
    settings = _load_settings(settings_file(scale))
    overlay = rehearsal_file()
    return deep_merge(settings, _load_settings(overlay)) if overlay else settings


def deep_merge(base: dict, over: dict) -> dict:
    """`base` with `over` merged in: mappings key by key (recursively), any other value of `over` replaces."""
    merged = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = deep_merge(merged[key], value) if both else value
    return merged


@functools.cache
def _load_settings(path: Path) -> dict[str, dict]:
    """Read and cache one file's `settings` mapping (every CLI resolves its config once; tests resolve many)."""
    settings = load_yaml(path).get("settings")
    if not isinstance(settings, dict):
        raise ConfigError(f"config file {path} has no 'settings' mapping (one section of overrides per stage); "
                          "add it")
    return settings


def _scale_sections(scale: str, cls: type) -> list[tuple[str, dict]]:
    """The (source, overrides) of each section `cls` applies at `scale`, in order; a missing section is an error."""
    path = settings_file(scale)
    settings = scale_settings(scale)
    missing = [name for name in cls.SCALE_SECTIONS if name not in settings]
    if missing:
        raise ConfigError(f"config file {path}: 'settings' has no section {', '.join(map(repr, missing))} "
                          f"(applied by {cls.__name__}); add it ({{}} if the scale keeps the paper values)")
    source = f"config file {path}" + (f" under rehearsal {rehearsal_file()}" if rehearsal_file() else "")
    return [(f"{source}, settings.{name}", settings[name]) for name in cls.SCALE_SECTIONS]


#################################################################################
#                        Overrides, validation, hashing                        #
#################################################################################


SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")  # 1e-4, 2.5E3: numbers YAML 1.1 leaves as text


def _check_value(key: str, value, annotation):
    """Return `value` converted to `annotation`, or raise ConfigError naming `key`."""
    hint = typing.get_origin(annotation)
    if hint in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        inner = [a for a in options if a is not type(None)]
        return _check_value(key, value, inner[0])
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif annotation is float:
        if isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as text; it means the number
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"config key '{key}' is {value}; it must be a finite number")
            return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    name = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"config key '{key}' must be {name}, got {value!r} ({type(value).__name__})")


def _apply(obj, overrides: dict, prefix: str = ""):
    """Apply a nested override mapping onto dataclass `obj` in place, rejecting unknown keys and wrong types."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"config section '{prefix.rstrip('.') or '<top>'}' must be a mapping, got {overrides!r}")
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in overrides.items():
        full = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            tip = f" (did you mean '{prefix}{close[0]}'?)" if close else f"; known keys: {', '.join(names)}"
            raise ConfigError(f"unknown config key '{full}'{tip}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{full}.")
        else:
            setattr(obj, key, _check_value(full, value, hints[key]))


def _validate(cfg: RunConfig):
    """Cross-field checks that types alone cannot express."""
    if cfg.scale not in SCALE_NAMES:
        raise ConfigError(f"config key 'scale' is {cfg.scale!r}; choose one of {', '.join(SCALE_NAMES)}")
    checks = [
        ("model.sample_size", cfg.model.sample_size % cfg.model.patch_size == 0,
         "must be divisible by model.patch_size"),
        ("train.mixed_precision", cfg.train.mixed_precision in ("no", "bf16"), "must be 'no' or 'bf16'"),
        ("sample.sampler", cfg.sample.sampler in ("ddpm", "ddim"), "must be 'ddpm' or 'ddim'"),
        ("sample.precision", cfg.sample.precision in PRECISIONS, f"must be one of {', '.join(PRECISIONS)}"),
        ("train.label_dropout", 0.0 <= cfg.train.label_dropout <= 1.0, "must be in [0, 1]"),
        ("train.lr_schedule", cfg.train.lr_schedule in ("constant", "linear"), "must be 'constant' or 'linear'"),
        ("train.log_with", cfg.train.log_with in TRACKERS, f"must be one of {', '.join(TRACKERS)}"),
        ("train.ema_start", cfg.train.ema_start >= 0, "must be >= 0"),
        ("train.ema_decay", 0.0 <= cfg.train.ema_decay < 1.0, "must be in [0, 1)"),
        ("data.channels", cfg.data.channels in (1, 3), "must be 1 or 3"),
        ("data.latents", cfg.data.latents is None or cfg.model.vae is not None,
         "needs model.vae: the cache holds VAE posteriors (set model.vae to the VAE it was made with, or unset "
         "data.latents)"),
        ("sample.steps", 1 <= cfg.sample.steps <= cfg.diffusion.num_train_timesteps,
         "must be between 1 and diffusion.num_train_timesteps"),
    ]
    for key in ("train.steps", "train.batch_size", "train.ema_every", "sample.batch_size", "sample.compute_chunk",
                "train.log_every", "train.checkpoint_every", "train.checkpoints_keep"):
        section, name = key.split(".")
        checks.append((key, getattr(getattr(cfg, section), name) > 0, "must be positive"))
    for key, ok, why in checks:
        if not ok:
            section, name = key.split(".")
            raise ConfigError(f"config key '{key}' = {getattr(getattr(cfg, section), name)!r} {why}")


def parse_set(items: list[str]) -> dict:
    """Turn `--set section.key=value` strings into a nested override mapping (values parsed as YAML scalars)."""
    nested: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.steps=100), got {item!r}")
        key, raw = item.split("=", 1)
        node = nested
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        try:
            node[leaf] = yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {item!r}: the value is not a plain YAML value ({_yaml_problem(err)}); "
                              "quote or fix it") from None
    return nested


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line saying what is wrong with some YAML text and where (line and column, 1-based)."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if "constructor for the tag" in problem:  # e.g. !!python/object/apply: safe_load builds plain values only
        problem += " (tags that build Python objects are never run; write plain values)"
    return where + problem


def load_yaml(path: str | Path) -> dict:
    """Read a YAML override file (safe loader only: config text is never executed)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not plain YAML: {_yaml_problem(err)}; fix it there") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(data).__name__}")
    return data


def check_overrides(mapping: dict, source: str, cls: type[RunConfig] = RunConfig) -> None:
    """Check one override mapping's keys and value types on their own, so that the error names `source` (its file).

    Cross-field checks need the merged config and are left to `resolve`.
    """
    _apply_from(cls(), mapping, source)


def _apply_from(cfg, mapping: dict, source: str) -> None:
    """`_apply` with errors prefixed by `source` (the file and section the mapping came from)."""
    try:
        _apply(cfg, mapping)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None


def resolve(scale: str = "paper", *overrides: dict, cls: type[RunConfig] = RunConfig) -> RunConfig:
    """Build the run config: paper defaults, then the scale's settings, then each override mapping in order.

    `cls` is RunConfig or a method's subclass of it; the sections of the scale's settings named by its
    SCALE_SECTIONS are applied in order. A config with sections of its own (e.g. `deft.protein.config`, no DiT) is
    any dataclass with `scale`, `SCALE_SECTIONS` and `validate()`: it gets only its own sections and checks.
    """
    if scale not in SCALE_NAMES:
        raise ConfigError(f"unknown scale {scale!r}; choose one of {', '.join(SCALE_NAMES)}")
    cfg = cls(scale=scale)
    for source, mapping in _scale_sections(scale, cls):
        _apply_from(cfg, mapping, source)
    for mapping in overrides:
        _apply(cfg, mapping)
    _check(cfg)
    return cfg


def _check(cfg) -> None:
    """The core checks (RunConfig's DiT sections) and the config's own `validate`."""
    if isinstance(cfg, RunConfig):
        _validate(cfg)
    cfg.validate()


def to_dict(cfg) -> dict:
    """Plain nested dict of a config dataclass (JSON-serialisable)."""
    return dataclasses.asdict(cfg)


def flat_keys(mapping: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}: every leaf of a nested mapping under its dotted config key."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(flat_keys(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def from_dict(data: dict, cls: type[RunConfig] = RunConfig) -> RunConfig:
    """Rebuild a config saved with `to_dict` (as `cls`), validating every key."""
    data = dict(data)
    scale = data.pop("scale", "paper")
    cfg = cls(scale=scale)
    _apply(cfg, data)
    _check(cfg)
    return cfg


def config_hash(section) -> str:
    """Short stable hash of a config (or section) for provenance columns and compatibility checks."""
    text = json.dumps(dataclasses.asdict(section), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
