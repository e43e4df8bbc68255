"""Sample images from an exported DiT: one PNG per seed, a `.npz` of all of them, the protocol, an optional grid.

    python -m tunebench.sample --model runs/mini/source/model --out runs/mini/source/samples --seeds 0-103 \\
        --labels cycle --grid runs/mini/source/grid.png

Image i depends only on seed i (and the model and protocol). Finished PNGs are kept: a killed run started again
with the same protocol only makes the missing ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import add_config_args, print_config, run_cli, setup_logging


def main(argv: list[str] | None = None) -> None:
    """Parse flags and write the samples."""
    parser = argparse.ArgumentParser(prog="python -m tunebench.sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.set_defaults(scale=None)
    parser.add_argument("--model", required=True, help="exported DiT folder (save_pretrained) or cached hub id")
    parser.add_argument("--vae", default=None, help="AutoencoderKL folder for latent models (default: the one the "
                                                    "model was trained with)")
    parser.add_argument("--out", required=True, type=Path, help="folder for {seed:06d}.png, samples.npz, protocol.json")
    parser.add_argument("--seeds", default="0-63", help="seeds, e.g. 0-9999 (one image per seed)")
    parser.add_argument("--labels", default="uniform",
                        help="uniform (drawn from each seed), cycle (seed index mod classes), null, or ids like 0,3")
    parser.add_argument("--classes", type=int, default=None,
                        help="number of classes to draw from (default: the training dataset's class count)")
    parser.add_argument("--grid", type=Path, default=None, help="also write all images tiled into this PNG")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if available)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    from tunebench.sample_folder import sample_config, write_samples  # here: --help needs no torch
    run, sidecar = sample_config(args.model, args.scale, args.config, args.overrides)
    if args.dry_run:
        print_config(run)
        return
    setup_logging()
    write_samples(run, sidecar, args.model, args.out, args.seeds, args.labels, args.classes, args.grid, args.vae,
                  args.device, progress=not args.no_progress)


if __name__ == "__main__":
    run_cli(main)
