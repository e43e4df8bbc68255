"""Baseline posterior samplers for DEFT's comparisons: DPS, ΠGDM, DDRM, DDNM(+) and RED-diff on a frozen ε-model.

One module per method (as RED-diff's `algos/{dps,pgdm,ddrm,reddiff}.py`, vendored in alexdenker/DEFT, and
wyhuai/DDNM's `guided_diffusion/diffusion.py`, in the RED-diff flavour that DEFT's comparisons inherit) holds its
config dataclass (defaults are the papers'/RED-diff's code's), its `TASK_SETTINGS` (the per-task values of RED-diff's
`sample_test.sh` and DEFT's `run_commands.md`), its `RUN_COMMANDS` (what `baselines.protocol=run_commands` changes),
`unsupported_reason(op)` and `sample(...)`. This package's registry applies them: `config_for(name, task)`,
`configured(name, task, settings)` (the `baselines` config section), `supports(name, op)` and `run_baseline(...)`.
Noise is σ_y in [-1, 1] units, `op.noise_std` (= 2·sigma_y), for every method.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from types import ModuleType

import torch

from deft.baselines import ddnm, ddrm, dps, pigdm, reddiff
from deft.baselines.common import check_choice
from deft.baselines.ddnm import DDNMConfig
from deft.baselines.ddrm import DDRMConfig
from deft.baselines.dps import DPSConfig
from deft.baselines.pigdm import PiGDMConfig
from deft.baselines.reddiff import RedDiffConfig
from deft.config import BaselineSettings
from deft.operators.base import Operator
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule

__all__ = ["BASELINES", "TASKS", "DDNMConfig", "DDRMConfig", "DPSConfig", "PiGDMConfig", "RedDiffConfig",
           "config_for", "configured", "run_baseline", "supports", "unsupported_reason"]

TASKS = ("inpaint", "sr4", "hdr", "phase_retrieval", "nonlinear_deblur", "deblur_gauss", "deblur_motion")
# The `baselines` switches and the method config field each sets, on the methods whose config has that field.
SWITCH_FIELDS = {"start": "start", "pigdm_form": "form", "ddrm_threshold": "threshold"}


@dataclass(frozen=True)
class Baseline:
    """A registered method: its module (config type, per-task settings, support check, sampler) and display label."""

    module: ModuleType
    config_type: type

    @property
    def label(self) -> str:
        """The method's display name (e.g. "ΠGDM")."""
        return self.module.LABEL


BASELINES: dict[str, Baseline] = {
    "dps": Baseline(dps, DPSConfig),
    "pigdm": Baseline(pigdm, PiGDMConfig),
    "ddrm": Baseline(ddrm, DDRMConfig),
    "ddnm": Baseline(ddnm, DDNMConfig),
    "reddiff": Baseline(reddiff, RedDiffConfig),
}


def _baseline(name: str) -> Baseline:
    """The registry entry, or a ValueError listing the known names."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name]


def config_for(name: str, task: str | None = None, protocol: str = "paper", **overrides):
    """The method's default config with its `TASK_SETTINGS[task]`, its `RUN_COMMANDS[task]` under the run_commands
    protocol, and then `overrides` applied."""
    baseline = _baseline(name)
    if task is not None and task not in TASKS:
        raise ValueError(f"unknown task {task!r}; TASK_SETTINGS knows {list(TASKS)}")
    check_choice(protocol, "protocol")
    protocol_settings = baseline.module.RUN_COMMANDS.get(task, {}) if protocol == "run_commands" else {}
    settings = {**baseline.module.TASK_SETTINGS.get(task, {}), **protocol_settings, **overrides}
    return dataclasses.replace(baseline.config_type(), **settings)


def configured(name: str, task: str, settings: BaselineSettings):
    """The config `deft.reconstruct` runs baseline `name` with on the task labelled `task`: `config_for` under the
    `baselines` section's protocol and switches, and its step count when set. Tasks without published step sizes
    (e.g. inpaint_box) run with the method's defaults."""
    fields = {field.name for field in dataclasses.fields(_baseline(name).config_type)}
    overrides = {field: getattr(settings, key) for key, field in SWITCH_FIELDS.items() if field in fields}
    if settings.steps:
        overrides["steps"] = settings.steps
    return config_for(name, task if task in TASKS else None, settings.protocol, **overrides)


def unsupported_reason(name: str, op: Operator) -> str | None:
    """Why baseline `name` cannot run on `op`, or None when it can."""
    return _baseline(name).module.unsupported_reason(op)


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
        x, vjps = baseline.module.sample(eps_model, schedule, op, y, noise, config, progress)
    stats = {"nfe_per_image": (eps_model.evaluations - before) / y.shape[0], "backbone_vjps_per_image": vjps,
             "steps": config.steps}
    return x.detach().clamp(-1, 1), stats
