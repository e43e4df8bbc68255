"""Baseline posterior samplers for DEFT's comparisons: configs, per-task settings, registry and `run_baseline`.

DPS, ΠGDM, DDRM, DDNM(+) and RED-diff on a frozen ε-model (RED-diff's `algos/` in alexdenker/DEFT, and DDNM; samplers in
`deft.baseline_samplers`). Defaults are the papers'/RED-diff's; `TASK_SETTINGS` holds the per-task values of
RED-diff's `sample_test.sh` and DEFT's `run_commands.md`, applied by `config_for(name, task)`.

Interpretations (where the papers and their code leave a choice):
- Noise is σ_y in [-1, 1] units, `op.noise_std` (= 2·sigma_y), for every method.
- ΠGDM with noise: v = r_t²·Aᵀ(r_t²AAᵀ + σ_y²I)⁻¹(y − A x̂0), r_t² = 1 − ᾱ_t, i.e. the ΠGDM likelihood score
  scaled by r_t² so that σ_y = 0 gives RED-diff's A†(y − A x̂0) with the same w·sqrt(ᾱ_s ᾱ_t) step. RED-diff's
  task hacks (writing y into x̂0 for inpainting, the HDR contrast term) are left out.
- DDRM tests s_i·σ_s ≥ σ_y (DDRM's code: strict >), so the noiseless last step (σ_s = 0) sets the measured
  components to ȳ and A x = y exactly; x_T = sqrt(ᾱ_T)·V x̄_T (DDRM's code divides x̄_T by σ_T instead, a factor
  1/sqrt(1 − ᾱ_T) ≈ 1 + 5e-5 larger).
- DDNM's η is DDNM's own (the fresh-noise share of sqrt(1 − ᾱ_s)), not `deft.ddim`'s DDIM η. DDNM+ uses
  a = sqrt(ᾱ_s), σ = sqrt(1 − ᾱ_s) in λ_t, γ_t (the SVD code's choice; the simplified script uses ᾱ_s and
  sqrt(1 − ᾱ_s²)), and x_s = a·x̂0′ + γ_t·(ηz + sqrt(1 − η²)ε).
- RED-diff's loss is a sum over images of per-image means, so a batch equals its images run one at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from deft.baseline_samplers import (has_pinv, sample_ddnm, sample_ddrm, sample_dps, sample_pigdm,
                                    sample_reddiff)
from deft.ddim import SampleNoise, Schedule
from deft.operators import LinearOperator, Operator, SVDOperator


@dataclass(frozen=True)
class DPSConfig:
    """DPS (Chung et al. 2023) in RED-diff's DDIM form."""

    steps: int = 1000  # DEFT Tables 1/2/4 and RED-diff's `sample_batch.sh`: 1000 steps
    eta: float = 0.0  # RED-diff `dps.yaml`
    scale: float = 0.5  # w; RED-diff `sample_test.sh` inpainting (`dps.yaml` says 0.1)


@dataclass(frozen=True)
class PiGDMConfig:
    """ΠGDM (Song et al. 2023) as RED-diff's `pgdm.py` with awd."""

    steps: int = 100  # RED-diff `sample_test.sh`; the ΠGDM paper's ImageNet runs
    eta: float = 1.0  # RED-diff `sample_test.sh` (`pgdm.yaml` says 0.0)
    scale: float = 1.0  # w; RED-diff `pgdm.yaml` grad_term_weight
    cg_iterations: int = 50  # only for linear operators without an SVD or A† (ours, as deepinv's CG solve)


@dataclass(frozen=True)
class DDRMConfig:
    """DDRM (Kawar et al. 2022)."""

    steps: int = 20  # DDRM README, RED-diff `ddrm.yaml`
    eta: float = 0.85  # DDRM README (RED-diff's `sample_test.sh` runs 1.0)
    eta_b: float = 1.0  # DDRM README


@dataclass(frozen=True)
class DDNMConfig:
    """DDNM / DDNM+ (Wang et al. 2023), without time travel."""

    steps: int = 100  # DDNM `T_sampling`
    eta: float = 0.85  # DDNM `svd_ddnm.py` / simplified script


@dataclass(frozen=True)
class RedDiffConfig:
    """RED-diff (Mardani et al. 2024), "linear" denoiser weighting, point estimate (sigma_x0 = 0)."""

    steps: int = 1000  # RED-diff `sample_batch.sh`, DEFT Tables 2/4 (DEFT's SR command uses 100)
    lr: float = 0.1  # Adam learning rate, RED-diff `reddiff.yaml`
    lam: float = 0.25  # λ (grad_term_weight), RED-diff `reddiff.yaml`
    obs_weight: float = 1.0  # v, RED-diff `reddiff.yaml`


TASKS = ("inpaint", "sr4", "hdr", "phase_retrieval", "nonlinear_deblur", "deblur_gauss", "deblur_motion")

# Per-task overrides; a task missing from a method's table runs with the method's defaults.
TASK_SETTINGS: dict[str, dict[str, dict]] = {
    "dps": {  # RED-diff `sample_test.sh` (η, grad_term_weight) unless noted
        "inpaint": {"eta": 0.0, "scale": 0.5},
        "sr4": {"eta": 0.0, "scale": 1.0},  # also `dps.yaml`'s comment "1.0 for sr4"
        "hdr": {"eta": 0.5, "scale": 0.1},
        "phase_retrieval": {"eta": 1.0, "scale": 0.4},
        "nonlinear_deblur": {"eta": 0.5, "scale": 0.05},
        "deblur_gauss": {"eta": 1.0, "scale": 2.0},
        "deblur_motion": {"eta": 1.0, "scale": 2.0},  # no published value: Gaussian deblur's (our assumption)
    },
    "reddiff": {  # RED-diff `sample_test.sh` lr (λ stays 0.25; it uses λ 1.0 for σ_y = 0.1 inpainting)
        "inpaint": {"lr": 0.25},
        "sr4": {"lr": 0.25},  # DEFT `run_commands.md` (RED-diff's script keeps the 0.1 default)
        "hdr": {"lr": 0.5},
        "phase_retrieval": {"lr": 0.5},
        "nonlinear_deblur": {"lr": 0.5},
        "deblur_gauss": {"lr": 0.5},
        "deblur_motion": {"lr": 0.5},  # no published value: Gaussian deblur's (our assumption)
    },
    "pigdm": {},  # η 1.0, w 1, 100 steps for every task in `sample_test.sh`
    "ddrm": {},
    "ddnm": {},
}


@dataclass(frozen=True)
class Baseline:
    """A registered method: its config type, its sampler and a display label."""

    config_type: type
    sampler: Callable
    label: str


BASELINES: dict[str, Baseline] = {
    "dps": Baseline(DPSConfig, sample_dps, "DPS"),
    "pigdm": Baseline(PiGDMConfig, sample_pigdm, "ΠGDM"),
    "ddrm": Baseline(DDRMConfig, sample_ddrm, "DDRM"),
    "ddnm": Baseline(DDNMConfig, sample_ddnm, "DDNM"),
    "reddiff": Baseline(RedDiffConfig, sample_reddiff, "RED-diff"),
}


def _baseline(name: str) -> Baseline:
    """The registry entry, or a ValueError listing the known names."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name]


def config_for(name: str, task: str | None = None, **overrides):
    """The method's default config with `TASK_SETTINGS[name][task]` and then `overrides` applied."""
    baseline = _baseline(name)
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; TASK_SETTINGS knows {list(TASKS)}")
    settings = {**TASK_SETTINGS[name].get(task, {}), **overrides}
    return dataclasses.replace(baseline.config_type(), **settings)


def unsupported_reason(name: str, op: Operator) -> str | None:
    """Why baseline `name` cannot run on `op`, or None when it can."""
    _baseline(name)
    described = f"operator '{op.name}' ({type(op).__name__})"
    if name == "ddrm" and not isinstance(op, SVDOperator):
        return f"DDRM needs an SVD (an SVDOperator with singulars/vt/v/ut/u); {described} has none"
    if name == "ddnm" and not (op.linear and has_pinv(op)):
        return f"DDNM needs a linear operator with a pseudo-inverse; {described} is not one"
    if name == "pigdm" and not (isinstance(op, LinearOperator) or (has_pinv(op) and op.noise_std == 0)):
        return (f"ΠGDM needs a linear operator (an SVD or an adjoint) or, without measurement noise, a pseudo-inverse; "
                f"{described} has neither")
    return None  # DPS and RED-diff only differentiate through A


def supports(name: str, op: Operator) -> bool:
    """Whether baseline `name` can run on `op` (DDRM: SVD; DDNM: linear + A†; ΠGDM: linear, or A† if noiseless)."""
    return unsupported_reason(name, op) is None


def run_baseline(name: str, eps_model, schedule: Schedule, op: Operator, y: torch.Tensor, noise: SampleNoise,
                 config=None, progress: bool = False) -> tuple[torch.Tensor, dict]:
    """Reconstruct x from y with baseline `name`; row k uses only seed k of `noise` and y[k].

    Returns reconstructions clamped to [-1, 1] (B×C×H×W) and stats {"nfe_per_image", "backbone_vjps_per_image",
    "steps"}. Only DPS and ΠGDM backpropagate through the backbone; everything else runs under no_grad.
    """
    baseline = _baseline(name)
    config = baseline.config_type() if config is None else config
    if not isinstance(config, baseline.config_type):
        raise TypeError(f"{baseline.label} takes a {baseline.config_type.__name__}, got {type(config).__name__}")
    reason = unsupported_reason(name, op)
    if reason is not None:
        raise ValueError(reason)
    if len(noise) != y.shape[0]:
        raise ValueError(f"noise has {len(noise)} seeds but y has {y.shape[0]} rows; pass one seed per image")
    before = eps_model.evaluations
    with torch.no_grad():
        x, vjps = baseline.sampler(eps_model, schedule, op, y, noise, config, progress)
    stats = {"nfe_per_image": (eps_model.evaluations - before) / y.shape[0], "backbone_vjps_per_image": vjps,
             "steps": config.steps}
    return x.detach().clamp(-1, 1), stats
