"""The images DEFT fine-tunes on and is tested on: disjoint, seeded subsets of a registered dataset's splits.

Paper: 1000 fine-tuning images (every 10th of `imagenet_10k.txt`) and the 1000 test images of `dgp_top1k.txt`,
both ImageNet validation images, so the backbone saw neither. Mini: both come from the source domain's test split
(the backbone's pre-training used only its train split), as disjoint slices of one seeded permutation. Test image k
is the k-th of the test slice; its seed and its mask are k for every method.
"""

from __future__ import annotations

import torch

from deft.config import DeftConfig
from tunebench.datasets import DatasetError, TensorImageDataset, load_dataset


def _permuted(split_size: int, seed: int) -> torch.Tensor:
    """A seeded permutation of a split's indices."""
    return torch.randperm(split_size, generator=torch.Generator().manual_seed(seed))


def _selection(run: DeftConfig) -> dict[str, tuple]:
    """{'finetune': (dataset, split, indices), 'test': (dataset, split, indices)}; each split is opened once and
    nothing is decoded; errors name the key to change when a split is too small."""
    d = run.images
    shared = d.finetune_split == d.test_split
    splits = {split: load_dataset(run.data.dataset, split, run.data.resolution, run.data.channels, run.data.root)
              for split in {d.finetune_split, d.test_split}}
    needed = {d.test_split: d.test_images + (d.finetune_images if shared else 0)}
    if not shared:
        needed[d.finetune_split] = d.finetune_images
    for split, count in needed.items():
        if len(splits[split]) < count:
            raise DatasetError(f"dataset '{run.data.dataset}' split '{split}' has {len(splits[split])} images but "
                               f"images.test_images + images.finetune_images need {count}; lower them")
    test_order = _permuted(len(splits[d.test_split]), d.subset_seed)
    if shared:
        finetune_indices = test_order[d.test_images:d.test_images + d.finetune_images]
    else:
        finetune_indices = _permuted(len(splits[d.finetune_split]), d.subset_seed + 1)[:d.finetune_images]
    return {"finetune": (splits[d.finetune_split], d.finetune_split, finetune_indices),
            "test": (splits[d.test_split], d.test_split, test_order[:d.test_images])}


def _in_memory(dataset, split: str, indices: torch.Tensor) -> TensorImageDataset:
    """The chosen images of a split in memory (uint8 N×C×H×W), in the order given."""
    items = [dataset[int(i)] for i in indices]
    images = torch.stack([image for image, _ in items])
    labels = torch.tensor([label for _, label in items])
    return TensorImageDataset(images, labels, dataset.spec, split)


def finetune_set(run: DeftConfig) -> TensorImageDataset:
    """The images DEFT's head is trained on."""
    return _in_memory(*_selection(run)["finetune"])


def test_set(run: DeftConfig) -> TensorImageDataset:
    """The test images, in test order (image k has seed k and mask k)."""
    return _in_memory(*_selection(run)["test"])


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [-1, 1]."""
    return images.float() / 127.5 - 1.0
