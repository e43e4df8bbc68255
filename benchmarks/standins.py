"""Stand-ins for the metrics' weight files, with random weights in the formats their loaders read: torch-fidelity's
Inception-v3 (FID, `--inception-weights`) and torchvision's AlexNet (LPIPS's trunk, `$TORCH_HOME/hub/checkpoints`).
The rehearsal writes them (deft.rehearsal_inputs) so that both metrics' code paths run; their numbers mean nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3


class _UnloadedInception(FeatureExtractorInceptionV3):
    """torch-fidelity's Inception-v3 with the layers it builds and their random initialisation: its constructor
    always loads a weights file, which a stand-in has yet to be."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Keep the random initialisation."""
        return torch.nn.modules.module._IncompatibleKeys([], [])


def write_inception(path: Path, seed: int = 0) -> Path:
    """A state dict of torch-fidelity's Inception-v3 (the layout of weights-inception-2015-12-05-6726825d.pth)."""
    torch.manual_seed(seed)
    empty = path.with_name(f".{path.name}.empty")
    torch.save({}, empty)  # what the constructor opens before `_UnloadedInception` ignores it
    model = _UnloadedInception("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(empty))
    empty.unlink()
    # He initialisation keeps the activations' scale through the 90-odd ReLU layers; torch's default shrinks it
    # about threefold per layer, so that every image's features would be ~1e-8 and every FID ~0.
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    torch.save(model.state_dict(), path)
    return path


def write_alexnet(path: Path, seed: int = 0) -> Path:
    """A torchvision AlexNet state dict (the layout of alexnet-owt-7be5be79.pth) holding its `features.*` tensors,
    all that LPIPS's trunk reads: the classifier's 57M parameters would make the file 230 MB instead of 10."""
    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save({key: value for key, value in state.items() if key.startswith("features.")}, path)
    return path
