"""Throughput of the local feature extractor and of FID/KID against cached reference statistics, written as CSV rows.

    python -m benchmarks.bench_features --features resources/features/local-32 [--n-images 10000] \\
        [--out resources/bench/bench_features.csv]

The "generated" images are a seeded sample of the source train split (a stand-in: the speed does not depend on the
pixels); the reference is the source test split, computed once into --ref-dir and not timed. Each timing includes
building the extractor from its weights, as a `fid calc` run does (after one untimed warm-up batch, which absorbs
torch's first-call set-up); the FID timings also include reading the images and the cached reference `.npz`.
The 1-minute load average before each measurement is recorded, as other jobs share the machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.fid_defaults import BATCH_SIZE
from tunebench.cli import run_cli
from tunebench.config import ConfigError
from tunebench.dataset_registry import SOURCE_DATASET
from tunebench.io import atomic_path, git_commit

if TYPE_CHECKING:  # the functions import torch and the feature code themselves: --help needs none of them
    import torch

BENCH_COLUMNS = ("benchmark", "n_images", "seconds", "images_per_s", "device", "torch_threads", "load_avg_1min",
                 "extractor", "git_commit")


#################################################################################
#                                 Measurements                                  #
#################################################################################


def stand_in_images(n_images: int, resolution: int, seed: int = 0) -> torch.Tensor:
    """`n_images` uint8 N×3×H×W source-train images, a seeded choice (with replacement only beyond the split)."""
    import torch

    from tunebench.datasets import load_dataset
    images = load_dataset(SOURCE_DATASET, "train", resolution, channels=3).images
    generator = torch.Generator().manual_seed(seed)
    if n_images <= len(images):
        return images[torch.randperm(len(images), generator=generator)[:n_images]]
    return images[torch.randint(len(images), (n_images,), generator=generator)]


def write_png_folder(images: torch.Tensor, folder: Path) -> None:
    """Write images as {index:06d}.png, the layout `tunebench.sample` produces."""
    from PIL import Image
    for index, image in enumerate(images.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(image).save(folder / f"{index:06d}.png")


def measure(name: str, n_images: int, work: Callable[[], object], common: dict) -> dict:
    """Run `work` once and return its CSV row (wall-clock seconds and images per second)."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    row = {"benchmark": name, "n_images": n_images, "seconds": round(seconds, 3),
           "images_per_s": round(n_images / seconds, 1), "load_avg_1min": round(load, 2), **common}
    print(f"{name:<34} {n_images:>7} images {seconds:8.2f} s {row['images_per_s']:>10.1f} images/s  (load {load:.2f})")
    return row


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write the measurements as a CSV, atomically (a previous file is replaced)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=BENCH_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


#################################################################################
#                                 Command Line                                  #
#################################################################################


def main(argv: list[str] | None = None) -> None:
    """Parse flags, run the measurements and write the CSV."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", default="resources/features/local-32", metavar="DIR",
                        help="local feature-net folder (default resources/features/local-32)")
    parser.add_argument("--n-images", type=int, default=10000, help="images per measurement (default 10000)")
    parser.add_argument("--out", type=Path, default=Path("resources/bench/bench_features.csv"),
                        help="CSV of the measurements (default resources/bench/bench_features.csv)")
    parser.add_argument("--ref-dir", type=Path, default=Path("resources/fid-refs"),
                        help="where the cached source-test reference is found or made (default resources/fid-refs)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                        help=f"images per feature batch (default {BATCH_SIZE})")
    args = parser.parse_args(argv)
    if args.n_images < 2 or args.batch_size < 1:
        raise ConfigError("--n-images must be at least 2 and --batch-size positive")
    # Imported here: torch and torch-fidelity take seconds to import, and --help needs neither.
    import torch

    from benchmarks.feature_net import read_meta
    from benchmarks.fidelity import (
        compare,
        dataset_reference,
        extract_features,
        load_reference,
        make_extractor,
        read_images,
    )
    extractor = make_extractor("local", args.features)[0]
    resolution = read_meta(args.features)["resolution"]
    _, ref_path = dataset_reference(SOURCE_DATASET, "test", extractor, resolution, args.ref_dir, args.batch_size)
    images = stand_in_images(args.n_images, resolution)
    cuda = torch.cuda.is_available()
    common = {"device": torch.cuda.get_device_name() if cuda else f"cpu ({os.cpu_count()} cores)",
              "torch_threads": torch.get_num_threads(), "extractor": extractor.extractor_id,
              "git_commit": git_commit()}
    extract_features(images[:args.batch_size], extractor, args.batch_size)  # untimed warm-up: first-call set-up
    n = args.n_images
    rows = [measure("features_tensor", n, lambda: extract_features(images, extractor, args.batch_size), common)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_png_folder(images, folder)
        rows.append(measure("features_png_folder", n,
                            lambda: extract_features(read_images(folder)[0], extractor, args.batch_size), common))
        rows.append(measure("fid_kid_tensor_vs_cached_ref", n,
                            lambda: compare(images, load_reference(ref_path), extractor, args.batch_size), common))
        rows.append(measure("fid_kid_png_folder_vs_cached_ref", n,
                            lambda: compare(read_images(folder)[0], load_reference(ref_path), extractor,
                                            args.batch_size), common))
    write_rows(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_cli(main)
