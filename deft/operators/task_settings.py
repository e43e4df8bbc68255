"""The DEFT suite's inverse problems as settings: `TaskConfig`, the named presets and their checks, as plain data.

`TaskConfig` holds every operator's parameters (defaults = the papers' values, DEFT's inpainting task as a whole);
`TASK_PRESETS` names the benchmark's tasks as overrides of it. The operators themselves import torch, which a CLI's
--help and config resolution should not wait for: `deft.operators.tasks` builds them from these settings.
sigma_y is in [0, 1] image units: the noise added to [-1, 1] measurements has std 2·sigma_y (deft/operators/base.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tunebench.config import ConfigError

# The operator registry's names in its order (the keys of `deft.operators.tasks.OPERATORS`, which a test checks):
# the settings check names without importing the operators.
OPERATOR_NAMES = ("inpaint_box", "inpaint_random", "inpaint_freeform", "sr_avgpool", "sr_bicubic", "deblur_gauss",
                  "deblur_gauss_dps", "deblur_motion", "hdr", "phase_retrieval", "nonlinear_blur")

# The values of the protocol switches, the default first (docs/deft.md, "Deviations from the official code").
CHOICES = {"gradient": ("official", "exact_vjp"), "phase_grad_at": ("xt", "x0hat"),
           "hio_tie": ("official", "channel_mean"), "noise": ("official", "masked"),
           "deblur_singulars": ("correct", "official")}


@dataclass
class TaskConfig:
    """One inverse problem: which operator, its noise and its parameters (unused fields are ignored)."""

    name: str = "inpaint"  # task label in result rows
    operator: str = "inpaint_freeform"  # registry key, one of OPERATOR_NAMES
    sigma_y: float = 0.05  # noise std in [0, 1] units (2·sigma_y in [-1, 1]); DEFT inp.yaml's unscaled 0.1
    seed: int = 0  # masks: image k's mask from (seed, k); deblur_motion: its kernel from seed
    box_low: float = 0.5  # inpaint_box: square side uniform in [box_low, box_high] × image side (DPS 128/256)
    box_high: float = 0.5
    random_low: float = 0.3  # inpaint_random: missing fraction p ~ U(random_low, random_high) (DPS code)
    random_high: float = 0.7
    freeform_low: float = 0.2  # inpaint_freeform: hole coverage in [low, high] (Palette "20-30% freeform")
    freeform_high: float = 0.3
    factor: int = 4  # sr_avgpool / sr_bicubic downsampling factor
    blur_sigma: float = 25.0  # deblur_gauss: σ in pixels of its fixed 5-tap grid (RED-diff/DEFT 25; DDRM/DDNM 10)
    blur_drop_last_tap: bool = True  # deblur_gauss: DDRM's matrix loop skips tap 5; False = symmetric 5 taps
    svd_zero: float = 0.03  # sr_bicubic / deblur_gauss: 1-D singular values below this are zeroed (DDRM)
    kernel_size: int = 61  # deblur_motion / deblur_gauss_dps: kernel side at 256 px (DPS), scaled, kept odd
    kernel_sigma: float = 3.0  # deblur_gauss_dps: Gaussian σ in pixels at 256 px (DPS), scaled
    motion_intensity: float = 0.5  # deblur_motion: trajectory irregularity in [0, 1] (DPS)
    oversample: float = 2.0  # phase_retrieval: int(oversample/8 · resolution) zero pixels per side
    hio_rounds: int = 7  # phase_retrieval: HIO/ER rounds of the head's classical-inverse input (DEFT: 7 × 50)
    hio_iterations: int = 50  # phase_retrieval: iterations per round
    nl_seed: int = 42  # nonlinear_blur: seed of the stand-in, or of bkse's kernel code (RED-diff/DEFT fix it, 42)
    nl_kernels: int = 4  # nonlinear_blur: motion kernels the stand-in mixes
    bkse_weights: str | None = None  # nonlinear_blur: path to bkse's GOPRO_wVAE.pth; set = the real KernelWizard
    # operator (deft.operators.bkse.BkseBlur; 3-channel images, side a multiple of 128), unset = the seeded stand-in
    # DEFT's likelihood gradient g: "official" = each official likelihood class's formula (the inpainting sign, HDR's
    # and the blur's H_pinv in place of the adjoint, phase retrieval's gradient in [0, 1] units); "exact_vjp" =
    # −J_A(x)ᵀ(A(x) − y)/σ² for every operator (deft.operators.base.Operator)
    gradient: str = "official"
    phase_grad_at: str = "xt"  # phase_retrieval: g evaluated at x_t (official code) or at x̂0 (the paper's text)
    hio_tie: str = "official"  # phase_retrieval HIO round 3: copy channel 0 of the batch's first image (official)
    # or replace every image's channels by their mean ("channel_mean")
    noise: str = "official"  # inpainting: noise over the whole image, hole included (official), or y = 0 in the hole
    deblur_singulars: str = "correct"  # deblur_gauss: singular values paired with their coefficients ("correct") or
    # laid out as DDRM's `Deblurring.singulars` returns them ("official": not the blur its matrices build)


TASK_PRESETS: dict[str, dict] = {
    # DEFT's tasks (Tables 1-2); noise as in DEFT's configs, converted to [0, 1] units
    "inpaint": {"operator": "inpaint_freeform", "sigma_y": 0.05},
    "sr4": {"operator": "sr_avgpool", "factor": 4, "sigma_y": 0.0},
    "hdr": {"operator": "hdr", "sigma_y": 0.05},
    "phase_retrieval": {"operator": "phase_retrieval", "oversample": 2.0, "sigma_y": 0.0},
    "nonlinear_deblur": {"operator": "nonlinear_blur", "sigma_y": 0.0},
    # the wider community's variants; DPS adds 0.05 in [-1, 1] units, i.e. sigma_y = 0.025
    "inpaint_box": {"operator": "inpaint_box", "sigma_y": 0.025},
    "inpaint_random": {"operator": "inpaint_random", "sigma_y": 0.025},
    "sr4_bicubic": {"operator": "sr_bicubic", "factor": 4, "sigma_y": 0.0},  # noiseless like sr4
    "deblur_gauss": {"operator": "deblur_gauss", "sigma_y": 0.025},
    "deblur_gauss_dps": {"operator": "deblur_gauss_dps", "sigma_y": 0.025},
    "deblur_motion": {"operator": "deblur_motion", "sigma_y": 0.025},
}


def check_task(task: TaskConfig) -> None:
    """Raise ConfigError (a ValueError) naming the first bad field of `task` and what it must be."""
    if task.operator not in OPERATOR_NAMES:
        raise ConfigError(f"config key 'task.operator' is {task.operator!r}; choose one of {', '.join(OPERATOR_NAMES)}")
    checks = [
        ("sigma_y", task.sigma_y >= 0, "must be >= 0"),
        ("seed", task.seed >= 0, "must be >= 0 (it seeds numpy generators)"),
        ("box_low", 0 < task.box_low <= task.box_high, "must be > 0 and <= task.box_high"),
        ("box_high", task.box_high < 1, "must be < 1"),
        ("random_low", 0 <= task.random_low <= task.random_high, "must be >= 0 and <= task.random_high"),
        ("random_high", task.random_high <= 1, "must be <= 1"),
        ("freeform_low", 0 < task.freeform_low <= task.freeform_high, "must be > 0 and <= task.freeform_high"),
        ("freeform_high", task.freeform_high < 1, "must be < 1"),
        ("factor", task.factor >= 1, "must be >= 1"),
        ("blur_sigma", task.blur_sigma > 0, "must be > 0"),
        ("svd_zero", task.svd_zero >= 0, "must be >= 0"),
        ("kernel_size", task.kernel_size >= 1, "must be >= 1"),
        ("kernel_sigma", task.kernel_sigma > 0, "must be > 0"),
        ("motion_intensity", 0 <= task.motion_intensity <= 1, "must be in [0, 1]"),
        ("oversample", task.oversample >= 0, "must be >= 0"),
        ("nl_seed", task.nl_seed >= 0, "must be >= 0 (it seeds numpy generators)"),
        ("nl_kernels", task.nl_kernels >= 1, "must be >= 1"),
        ("hio_rounds", task.hio_rounds >= 1, "must be >= 1"),
        ("hio_iterations", task.hio_iterations >= 1, "must be >= 1"),
        *[(key, getattr(task, key) in options, f"must be one of {', '.join(options)}")
          for key, options in CHOICES.items()],
    ]
    for key, ok, why in checks:
        if not ok:
            raise ConfigError(f"config key 'task.{key}' = {getattr(task, key)!r} {why}")


def task_config(name: str, **overrides) -> TaskConfig:
    """The preset `name` (also the task's label) with `overrides` applied, validated."""
    if name not in TASK_PRESETS:
        raise ConfigError(f"unknown task preset {name!r}; choose one of {', '.join(TASK_PRESETS)}")
    known = [f.name for f in dataclasses.fields(TaskConfig)]
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ConfigError(f"unknown task setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    task = TaskConfig(**{"name": name, **TASK_PRESETS[name], **overrides})
    check_task(task)
    return task
