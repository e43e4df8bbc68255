"""List the dataset registry (`tunebench.datasets`) or write a preview grid of one dataset split.

    python -m tunebench.show_datasets --list
    python -m tunebench.show_datasets --preview textures --split train --out grid.png
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tunebench.dataset_registry import DATASETS, FOLDER_LAYOUT, SPLITS, DatasetError

if TYPE_CHECKING:  # the functions import torch and the image code themselves: --help needs none of them
    from torch.utils.data import Dataset


def write_preview(dataset: Dataset, out: Path, per_class: int = 8, max_classes: int = 8) -> None:
    """Write a PNG grid with one row of ``per_class`` images for each of the first ``max_classes`` classes."""
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.utils import make_grid

    from tunebench.datasets import ImageFolderDataset
    is_folder = isinstance(dataset, ImageFolderDataset)  # read its labels without decoding every image
    labels = np.array([label for _, label in dataset.samples]) if is_folder else dataset.labels.numpy()
    rows = [np.flatnonzero(labels == label)[:per_class] for label in np.unique(labels)[:max_classes]]
    images = torch.stack([dataset[int(i)][0] for row in rows for i in row]).float() / 255
    grid = make_grid(images, nrow=per_class, padding=2, pad_value=1.0)
    pixels = (grid * 255).round().byte().permute(1, 2, 0).numpy()
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # same folder, so os.replace is atomic
    try:
        Image.fromarray(pixels).save(temporary, format="PNG")
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def main(argv: list[str] | None = None) -> None:
    """Command line: list the registry or write a preview grid of one dataset split."""
    parser = argparse.ArgumentParser(prog="python -m tunebench.show_datasets", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--list", action="store_true", help="print the registered datasets with their split sizes")
    action.add_argument("--preview", metavar="NAME", choices=list(DATASETS), help="write a PNG grid of dataset NAME")
    parser.add_argument("--split", choices=SPLITS, default="train", help="split to preview (default: train)")
    parser.add_argument("--out", type=Path, help="preview PNG path (default: NAME-SPLIT.png)")
    parser.add_argument("--resolution", type=int, default=32, help="image side in pixels, >= 8 (default: 32)")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 = luminance, 3 = RGB (default: 3)")
    parser.add_argument("--root", help=f"folder of a paper-scale dataset, laid out as {FOLDER_LAYOUT}")
    args = parser.parse_args(argv)
    from tunebench.datasets import load_dataset
    try:
        if args.list:
            print(f"{'name':<17} {'role':<10} {'classes':>7} {'train':>6} {'test':>6}  description")
            for spec in DATASETS.values():
                # Sizes are measured by building at 8 px, so the table can never drift from the recipes.
                sizes = ["-", "-"] if spec.role == "paper" else [len(load_dataset(spec.name, s, 8, 1)) for s in SPLITS]
                print(f"{spec.name:<17} {spec.role:<10} {spec.num_classes:>7} {sizes[0]:>6} {sizes[1]:>6}  "
                      f"{spec.description}")
        else:
            out = args.out or Path(f"{args.preview}-{args.split}.png")
            write_preview(load_dataset(args.preview, args.split, args.resolution, args.channels, args.root), out)
            print(f"wrote {out}")
    except DatasetError as error:  # a user error: one clear line and status 2, like the suite's other CLIs
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
