"""A small CNN trained offline on all mini classes, registered as torch-fidelity's "tunebench-local" feature extractor.

    python -m benchmarks.features --out resources/features/local-32 [--epochs 3] [--max-per-class 1000] [--seed 0]

The network sees the union of the source classes and each downstream dataset's classes, every dataset with its own
label range, so its penultimate features separate all the mini domains. Metrics computed from these features are
`fid_local` / `kid_local`, recorded with the extractor id `local-<first 8 hex of the weights' SHA-256>`: they are
not Inception FID/KID and are not comparable to the papers' numbers (docs/fid.md).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tunebench.cli import run_cli, setup_logging
from tunebench.config import ConfigError

log = logging.getLogger("benchmarks.features")


def write_reference_batch(folder: Path) -> None:
    """Write the reference batch of the network in `folder` beside it."""
    from benchmarks.feature_net import REFERENCE_BATCH_FILE, load_feature_net, reference_batch
    from tunebench.io import save_npz

    net, meta = load_feature_net(folder)
    save_npz(folder / REFERENCE_BATCH_FILE, **reference_batch(net, resolution=meta["resolution"]))
    log.info("wrote %s (%s)", folder / REFERENCE_BATCH_FILE, meta["extractor_id"])


def main(argv: list[str] | None = None) -> None:
    """Parse flags, train the feature net and write it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for weights.safetensors and meta.json (required to train)")
    parser.add_argument("--epochs", type=int, default=3, help="passes over the (subsampled) union (default 3)")
    parser.add_argument("--resolution", type=int, default=32, help="image side the net is trained at (default 32)")
    parser.add_argument("--max-per-class", type=int, default=1000,
                        help="train images per class at most, a seeded subsample (default 1000; 0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="initialisation, subsample and batch order (default 0)")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size (default 128)")
    parser.add_argument("--lr", type=float, default=2e-3, help="AdamW peak learning rate (default 2e-3)")
    parser.add_argument("--reference-batch", type=Path, metavar="FOLDER",
                        help="write FOLDER/reference_batch.npz (4 test images of each mini dataset and their "
                             "features under the network in FOLDER) instead of training; pinned beside the network, "
                             "it lets tests check that a machine computes the same features (docs/assets.md)")
    args = parser.parse_args(argv)
    if args.reference_batch:
        setup_logging()
        write_reference_batch(args.reference_batch)
        return
    for flag, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--lr", args.lr)):
        if value <= 0:
            raise ConfigError(f"{flag} must be positive, got {value}")
    if args.max_per_class < 0:
        raise ConfigError(f"--max-per-class must be 0 (all) or positive, got {args.max_per_class}")
    if args.out is None:
        parser.error("--out is required to train (or pass --reference-batch FOLDER)")
    setup_logging()
    from benchmarks.feature_net import ALL_DATASETS, save_feature_net, train_feature_net  # here: --help needs no torch
    net, meta = train_feature_net(ALL_DATASETS, args.resolution, args.epochs, args.max_per_class or None, args.seed,
                                  batch_size=args.batch_size, lr=args.lr)
    meta = save_feature_net(net, meta, args.out)
    log.info("wrote %s (%s): %d classes, test accuracy %.4f, trained in %.1f s", args.out, meta["extractor_id"],
             meta["architecture"]["num_classes"], meta["test_accuracy"], meta["train_seconds"])


if __name__ == "__main__":
    run_cli(main)
