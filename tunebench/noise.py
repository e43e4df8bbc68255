"""Per-sample noise: sample k of a batch depends only on seed k, whatever the batch size or its position.

Every sample owns a CPU `torch.Generator` seeded by its seed (CPU generators give the same numbers on every device);
DiT sampling, DEFT, the inverse-problem baselines and the protein samplers draw all their noise from it.
"""

from __future__ import annotations

import torch


class SampleNoise:
    """Per-sample noise streams: row i draws from its own generator seeded by seeds[i]."""

    def __init__(self, seeds: list[int], device: torch.device | str = "cpu"):
        """One CPU generator per seed."""
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.device = device

    def randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A len(seeds)×shape standard normal tensor, row i from generator i."""
        return torch.stack([torch.randn(shape, generator=g) for g in self.generators]).to(self.device)

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.generators)
