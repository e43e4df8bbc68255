"""Command-line plumbing shared by the DEFT CLIs: the task preset flag, the frozen backbone flag, their run config."""

from __future__ import annotations

import argparse

from deft.config import DeftConfig
from deft.operators.task_settings import TASK_PRESETS
from tunebench.cli import add_config_args, config_from_args
from tunebench.config import ConfigError


def add_task_args(parser: argparse.ArgumentParser) -> None:
    """The shared config flags plus the task preset shortcut."""
    add_config_args(parser)
    parser.add_argument("--task", choices=sorted(TASK_PRESETS),
                        help="inverse problem preset (sets task.*; --set task.KEY=VALUE changes one setting)")


def add_deft_args(parser: argparse.ArgumentParser) -> None:
    """The task flags plus the frozen backbone (every CLI that queries it)."""
    add_task_args(parser)
    parser.add_argument("--backbone", help="frozen unconditional model folder (sets model.pretrained)")


def resolve_task_run(args: argparse.Namespace, cls: type[DeftConfig] = DeftConfig,
                     shortcuts: dict | None = None) -> DeftConfig:
    """Paper defaults < scale < task preset < YAML files < `shortcuts` < --set."""
    preset = {"task": {"name": args.task, **TASK_PRESETS[args.task]}} if args.task else None
    return config_from_args(args, cls, preset=preset, shortcuts=shortcuts)


def resolve_deft(args: argparse.Namespace) -> DeftConfig:
    """The DEFT run of the flags; --backbone sets model.pretrained, which is required."""
    run = resolve_task_run(args, DeftConfig, {"model": {"pretrained": args.backbone}} if args.backbone else None)
    if not run.model.pretrained:
        raise ConfigError("no backbone: pass --backbone FOLDER (a UNet2DModel or DiT save_pretrained folder) or "
                          "--set model.pretrained=FOLDER")
    return run
