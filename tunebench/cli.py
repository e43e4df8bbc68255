"""Command-line plumbing shared by every CLI: config flags, logging to the output folder, friendly errors."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from tunebench.config import SCALE_NAMES, RunConfig, check_overrides, load_yaml, parse_set, resolve, to_dict


def add_config_args(parser: argparse.ArgumentParser) -> None:
    """Add --scale, --config, --set and --dry-run."""
    parser.add_argument("--scale", choices=SCALE_NAMES, default="mini",
                        help="preset of sizes: smoke (tests), mini (CPU reproduction), paper (DiT-XL/2 on GPUs)")
    parser.add_argument("--config", action="append", default=[], metavar="YAML",
                        help="YAML file of overrides (sections model/diffusion/data/train/sample); repeatable")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="override one setting, e.g. --set train.steps=100; repeatable, applied last")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config as JSON and exit")


def add_training_args(parser: argparse.ArgumentParser) -> None:
    """Add --out, --resume and --no-progress, the flags of every training CLI."""
    parser.add_argument("--out", required=True, type=Path, help="output folder (resumes if it holds checkpoints)")
    parser.add_argument("--resume", default="auto", metavar="auto|never|PATH",
                        help="auto: continue from the latest checkpoint in --out (default); never: start over; "
                             "PATH: a checkpoint-NNNNNNN folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (logs still written)")


def config_from_args(args: argparse.Namespace, cls: type[RunConfig] = RunConfig, preset: dict | None = None,
                     shortcuts: dict | None = None) -> RunConfig:
    """Resolve the run config (a `cls`) from the parsed flags.

    Paper defaults < scale < `preset` (e.g. a DEFT task) < YAML files < `shortcuts` (flags such as --pretrained)
    < --set.
    """
    files = [load_yaml(path) for path in args.config]
    for path, mapping in zip(args.config, files):
        check_overrides(mapping, f"config file {path}", cls)
    return resolve(args.scale, preset or {}, *files, shortcuts or {}, parse_set(args.overrides), cls=cls)


def flag_overrides(*flags: tuple[object, str, str]) -> dict:
    """Config overrides {section: {key: value}} of shortcut flags given as (value, section, key); None = not given."""
    overrides: dict = {}
    for value, section, key in flags:
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def print_config(cfg: RunConfig) -> None:
    """Print the resolved config (for --dry-run)."""
    print(json.dumps(to_dict(cfg), indent=2, sort_keys=True))


def setup_logging(out_dir: str | Path | None = None) -> None:
    """Log INFO to stderr and, when given, to OUT/log.txt."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(Path(out_dir) / "log.txt"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", handlers=handlers,
                        force=True)
    for noisy in ("diffusers", "accelerate", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# The errors a CLI reports in one line, by module: (class name, exit status). 2 = bad input (config, data, model,
# checkpoint, unreadable or unsafe files), 3 = a run whose loss went NaN/Inf (so a workflow can tell them apart).
USER_ERRORS = {"tunebench.config": ("ConfigError", 2), "tunebench.dataset_registry": ("DatasetError", 2),
               "tunebench.io": ("FileFormatError", 2), "tunebench.models": ("ModelLoadError", 2),
               "tunebench.checkpoint": ("CheckpointError", 2), "tunebench.training": ("NonFiniteLossError", 3)}


def user_error_status(err: BaseException) -> int | None:
    """The exit status of an expected error, or None for a bug (which keeps its traceback).

    An instance of one of these classes means its module is already imported, so the check looks them up in
    sys.modules instead of importing them: a table-rendering CLI then never pays for importing diffusers.
    """
    if isinstance(err, FileNotFoundError):
        return 2
    for module, (name, status) in USER_ERRORS.items():
        cls = getattr(sys.modules.get(module), name, None)
        if cls is not None and isinstance(err, cls):
            return status
    return None


def run_cli(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
    """Run `main`, turning expected errors into one clear line (no traceback) and their exit status."""
    try:
        main(argv)
    except Exception as err:
        status = user_error_status(err)
        if status is None:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(status)
