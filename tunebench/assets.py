"""Check, pin and compare the pinned pre-trained assets (assets/SCALE/NAME/ with a manifest.json).

    python -m tunebench.assets verify [--scale mini]                       # every file against its manifest
    python -m tunebench.assets pin source_dit --scale mini --build runs/mini/source/model \\
        --summary runs/mini/source/summary.json --quality runs/mini/assets/source_dit/quality.json \\
        --extra runs/mini/assets/source_dit/curve.csv --command "python -m tunebench.pretrain ..." [--replace]
    python -m tunebench.assets compare --scale mini --build source_dit=runs/mini/source/model \\
        --quality source_dit=runs/mini/assets/source_dit/quality.json --out runs/mini/assets/comparison.csv

`pin` is the only way an asset is replaced: it copies the build, its quality curve and a manifest (command, clean
commit, seed, threads, torch version, CPU capability, wall time, quality figures, SHA-256 of every file) into
assets/SCALE/NAME atomically, and refuses a build from uncommitted code or an existing pin without --replace.
`compare` writes what the `assets` target reports: for each rebuilt asset, whether each file's hash equals the
pinned one and the quality deltas. See docs/assets.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tunebench.cli import run_cli, setup_logging
from tunebench.config import SCALE_NAMES
from tunebench.io import read_json, write_csv
from tunebench.pinned_assets import (
    ASSETS,
    SIZE_LIMIT_BYTES,
    AssetError,
    compare_build,
    pin_asset,
    pinned_dir,
    pinned_size,
    provenance_from,
    verify_asset,
)

log = logging.getLogger("tunebench.assets")
COMPARISON_COLUMNS = ("asset", "item", "kind", "pinned", "rebuilt", "delta", "equal")


def name_value_pairs(pairs: list[str], flag: str) -> dict[str, Path]:
    """{asset: path} from repeated NAME=PATH flags, with an error naming the flag for a malformed or unknown one."""
    parsed = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or name not in ASSETS:
            raise AssetError(f"{flag} {pair}: expected NAME=PATH with NAME one of {', '.join(ASSETS)}")
        parsed[name] = Path(path)
    return parsed


def verify(args: argparse.Namespace) -> None:
    """Check every pinned asset of the scale (or the named ones) and print one line each."""
    for name in args.names or ASSETS:
        manifest = verify_asset(pinned_dir(args.scale, name, args.root))
        print(f"{name}: ok ({len(manifest['files'])} files, commit {manifest['git_commit'][:10]}, "
              f"quality {manifest['quality']})")
    size = pinned_size(args.scale, args.root)
    print(f"total {size / 2**20:.1f} MiB of pinned {args.scale} assets (limit {SIZE_LIMIT_BYTES / 2**20:.0f} MiB)")
    if size > SIZE_LIMIT_BYTES:
        raise AssetError(f"the pinned {args.scale} assets take {size} bytes, over the {SIZE_LIMIT_BYTES} limit")


def pin(args: argparse.Namespace) -> None:
    """Copy a build into the pinned location with its manifest."""
    summary = read_json(args.summary)
    from tunebench.models import read_sidecar  # here: --help and verify need no torch

    seed = read_sidecar(args.build).get("run_config", {}).get("train", {}).get("seed")
    target = pin_asset(args.name, args.scale, args.build, args.extra, args.command, provenance_from(summary, seed),
                       read_json(args.quality), args.root, replace=args.replace)
    log.info("pinned %s at %s", args.name, target)
    verify_asset(target)


def compare(args: argparse.Namespace) -> None:
    """Write the comparison of rebuilt assets with the pinned manifests."""
    builds = name_value_pairs(args.build, "--build")
    qualities = name_value_pairs(args.quality, "--quality")
    rows = []
    for name, build in builds.items():
        pinned = pinned_dir(args.scale, name, args.root)
        if not pinned.exists():  # e.g. smoke, whose assets the DAG always builds
            rows.append({"asset": name, "item": str(pinned), "kind": "not pinned", "pinned": "", "rebuilt": "",
                         "delta": "", "equal": False})
            continue
        quality = read_json(qualities[name]) if name in qualities else {}
        rows += compare_build(name, verify_asset(pinned), build, quality)
    write_csv(args.out, COMPARISON_COLUMNS, rows)
    log.info("wrote %s: %d of %d files equal to the pinned ones", args.out,
             sum(r["equal"] for r in rows if r["kind"] == "sha256"), sum(r["kind"] == "sha256" for r in rows))


def main(argv: list[str] | None = None) -> None:
    """Parse the subcommand and run it."""
    parser = argparse.ArgumentParser(prog="python -m tunebench.assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command_name", required=True)
    for name, helptext in (("verify", "check the pinned files against their manifests"),
                           ("pin", "replace (or first create) a pinned asset from a build"),
                           ("compare", "compare rebuilt assets with the pinned manifests")):
        sub = commands.add_parser(name, help=helptext, description=helptext)
        sub.add_argument("--scale", choices=SCALE_NAMES, default="mini", help="whose assets (default mini)")
        sub.add_argument("--root", type=Path, default=None, help="assets folder (default: the repository's assets/)")
    commands.choices["verify"].add_argument("names", nargs="*", metavar="NAME",
                                            help=f"assets to check (default all: {', '.join(ASSETS)})")
    pin_parser = commands.choices["pin"]
    pin_parser.add_argument("name", choices=list(ASSETS), help="which asset")
    pin_parser.add_argument("--build", type=Path, required=True, help="the exported folder to pin")
    pin_parser.add_argument("--summary", type=Path, required=True,
                            help="the build's summary.json (meta.json for the feature network): commit, seed, "
                                 "threads, torch version, CPU capability, wall time")
    pin_parser.add_argument("--quality", type=Path, required=True, help="JSON of the asset's quality figures")
    pin_parser.add_argument("--extra", type=Path, action="append", default=[],
                            help="a file pinned beside the weights, e.g. the quality curve CSV/PNG; repeatable")
    pin_parser.add_argument("--command", required=True, help="the exact command that built the folder")
    pin_parser.add_argument("--replace", action="store_true", help="replace an existing pin (on purpose)")
    compare_parser = commands.choices["compare"]
    compare_parser.add_argument("--build", action="append", default=[], required=True, metavar="NAME=FOLDER",
                                help="a rebuilt asset's folder; repeatable")
    compare_parser.add_argument("--quality", action="append", default=[], metavar="NAME=JSON",
                                help="a rebuilt asset's quality figures; repeatable")
    compare_parser.add_argument("--out", type=Path, required=True, help="comparison CSV")
    args = parser.parse_args(argv)
    setup_logging()
    {"verify": verify, "pin": pin, "compare": compare}[args.command_name](args)


if __name__ == "__main__":
    run_cli(main)
