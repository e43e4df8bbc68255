"""Read the configured protein structures, keep one chain per sequence-identity cluster, split the chains by identity
and save the Cα traces.

    python -m deft.protein.prepare --scale mini --out runs/mini/protein/data

Writes (each atomically) OUT/chains.npz — per split ('train', 'test') all Cα coordinates concatenated
(`{split}_ca`, float32, Å) with `{split}_offsets` (int64, chain k is rows offsets[k]:offsets[k+1]) and fixed-width
text arrays `{split}_names`, `_sequences`, `_sse` ('' = unknown), `_sources`, `_files`, `_chain_ids`;
OUT/manifest.csv (one row per chain used: split, identity cluster, provenance, length, DSSP helix/strand fractions
where known, SHA-256 of the source file); OUT/skipped.csv (files or chains left out, with the reason);
OUT/config.json (the resolved settings). `load_prepared(OUT)` reads the chains back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deft.protein.config import ProteinConfig
from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging


def main(argv: list[str] | None = None) -> None:
    """Parse flags and prepare the chains."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars of the identity split")
    args = parser.parse_args(argv)
    run = config_from_args(args, ProteinConfig)
    if args.dry_run:
        print_config(run)
        return
    setup_logging(args.out)
    from deft.protein.chain_set import prepare  # here: --help needs no numpy
    prepare(run, args.out, progress=not args.no_progress)


if __name__ == "__main__":
    run_cli(main)
