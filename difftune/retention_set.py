"""The retention set ("knowledge bank") as fine-tuning reads it: the images `python -m difftune.retention` wrote."""

from __future__ import annotations

from pathlib import Path

import torch

from tunebench.config import ConfigError
from tunebench.io import load_npz_images, read_json

MANIFEST = "manifest.json"


class RetentionSet:
    """A retention set on disk: uint8 N×C×H×W images (labels are irrelevant: training uses the null class)."""

    def __init__(self, folder: str | Path, resolution: int | None = None, channels: int | None = None,
                 size: int | None = None):
        """Load OUT/samples.npz (its first `size` images when given) and check it against the manifest and (if
        given) the model's input size."""
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise ConfigError(f"{folder} is not a retention set (no {MANIFEST}); make one with "
                              f"`python -m difftune.retention --out {folder}`")
        self.manifest = read_json(folder / MANIFEST)
        images = load_npz_images(folder / "samples.npz")
        if images.shape[0] != self.manifest["n"]:
            raise ConfigError(f"{folder}/samples.npz holds {images.shape[0]} images but {MANIFEST} says "
                              f"{self.manifest['n']}; re-run difftune.retention")
        if size is not None and size > len(images):
            raise ConfigError(f"difftune.retention_size={size} but retention set {folder} holds {len(images)} "
                              "images; lower the size or make a larger set")
        self.images = torch.from_numpy(images[:size]).permute(0, 3, 1, 2).contiguous()
        if channels == 3 and self.images.shape[1] == 1:
            self.images = self.images.expand(-1, 3, -1, -1).contiguous()
        if resolution is not None and tuple(self.images.shape[2:]) != (resolution, resolution):
            raise ConfigError(f"retention set {folder} has {tuple(self.images.shape[2:])} images but "
                              f"data.resolution is {resolution}; make the set at the fine-tuning resolution")
        self.labels = torch.zeros(len(self.images), dtype=torch.long)
        self.folder = folder

    def __len__(self) -> int:
        """Number of images."""
        return len(self.images)
