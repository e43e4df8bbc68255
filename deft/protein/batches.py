"""Training batches for the protein models: random crops of the training chains and random motif masks.

Every draw of step s comes from generators seeded by (seed, s), so a resumed run sees exactly the batches the
uninterrupted run would have seen. A batch shares one crop length L (drawn in crop_min..crop_max) and takes chains
at least L residues long, so no padding is needed.
"""

from __future__ import annotations

import numpy as np
import torch

from deft.protein.config import MotifMasks, StructureData
from deft.protein.diffusion import centre
from tunebench.dataset_registry import DatasetError
from tunebench.training import step_generator


def random_rotations(count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` uniformly random proper rotations (count×3×3), from normalised random quaternions."""
    q = torch.randn(count, 4, generator=generator)
    w, x, y, z = (q / q.norm(dim=1, keepdim=True)).unbind(1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], 1).view(count, 3, 3)


class CropBatches:
    """Centred, randomly rotated crops of the training chains in model units, as a pure function of the step."""

    def __init__(self, chains, data: StructureData, batch_size: int, seed: int):
        """`chains`: objects with a `.ca` N×3 array in Å (deft.protein.structures.Chain)."""
        self.coords = [torch.as_tensor(np.asarray(c.ca), dtype=torch.float32) for c in chains]
        self.lengths = torch.tensor([len(c) for c in self.coords])
        if not self.coords or int(self.lengths.max()) < data.crop_min:
            raise DatasetError(f"no training chain has data.crop_min = {data.crop_min} residues; lower crop_min or "
                               "add longer chains")
        self.data, self.batch_size, self.seed = data, batch_size, seed

    def get(self, step: int) -> torch.Tensor:
        """The step's batch: B×L×3 centred coordinates × data.coord_scale."""
        generator = step_generator(self.seed, step, stream=1)
        d = self.data
        longest = int(self.lengths.max())
        length = int(torch.randint(d.crop_min, min(d.crop_max, longest) + 1, (1,), generator=generator))
        eligible = torch.nonzero(self.lengths >= length).flatten()
        # Chains are weighted by their number of windows, so every residue is equally likely to be seen.
        weights = (self.lengths[eligible] - length + 1).double()
        picks = eligible[torch.multinomial(weights, self.batch_size, replacement=True, generator=generator)]
        crops = []
        for index in picks.tolist():
            start = int(torch.randint(int(self.lengths[index]) - length + 1, (1,), generator=generator))
            crops.append(self.coords[index][start:start + length])
        batch = centre(torch.stack(crops))
        rotations = random_rotations(self.batch_size, generator)
        return batch @ rotations.transpose(1, 2) * d.coord_scale


def random_motif_masks(count: int, length: int, masks: MotifMasks, generator: torch.Generator,
                       empty_fraction: float = 0.0) -> torch.Tensor:
    """count×length 0/1 masks of 1..max_segments contiguous, non-overlapping segments covering min..max fraction of
    the residues (at least one residue per segment); a share `empty_fraction` of rows is all zero."""
    out = torch.zeros(count, length)
    for row in range(count):
        if float(torch.rand(1, generator=generator)) < empty_fraction:
            continue
        fraction = masks.min_fraction + (masks.max_fraction - masks.min_fraction) * float(
            torch.rand(1, generator=generator))
        total = max(1, round(fraction * length))
        segments = min(int(torch.randint(1, masks.max_segments + 1, (1,), generator=generator)), total)
        # Split `total` residues into segment sizes, and the free residues into the gaps around them.
        cuts = sorted(torch.randperm(total - 1, generator=generator)[:segments - 1].add(1).tolist())
        sizes = [b - a for a, b in zip([0, *cuts], [*cuts, total])]
        free = length - total - (segments - 1)  # inner gaps get at least one residue, so segments stay apart
        gap_cuts = sorted(torch.randint(0, free + 1, (segments,), generator=generator).tolist())
        position = 0
        for k, (size, gap_end, gap_start) in enumerate(zip(sizes, gap_cuts, [0, *gap_cuts[:-1]])):
            position += gap_end - gap_start + (1 if k else 0)
            out[row, position:position + size] = 1
            position += size
    return out
