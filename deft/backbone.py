"""The frozen unconditional ε-model every DEFT method and baseline queries, loaded from a diffusers folder.

Two kinds are accepted: a `UNet2DModel` (paper scale: the ADM ImageNet-256 model converted to diffusers, or any
unconditional UNet) and the DiT core (`DiTTransformer2DModel`, queried with its null label, the mini scale's
unconditional model). Models that learn the variance return 2C channels; only the first C (ε) are used, as DEFT
does with ADM's 6-channel output.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import UNet2DModel

from tunebench.models import ModelLoadError, load_dit, load_pretrained, null_class
from tunebench.sampling import chunked


class FrozenEps:
    """ε_θ(x_t, t) of a frozen model, run on fixed-size row chunks so outputs do not depend on the batch size.

    Counts network evaluations per image (`evaluations`); gradients flow to x only when the caller enables them
    (DPS, ΠGDM), never into the weights.
    """

    def __init__(self, model: torch.nn.Module, chunk: int = 16):
        """Freeze `model` (eval mode, no parameter gradients)."""
        self.model = model.eval().requires_grad_(False)
        self.is_dit = not isinstance(model, UNet2DModel)
        self.channels = model.config.in_channels
        self.sample_size = model.config.sample_size
        self.chunk = chunk
        self.evaluations = 0

    @property
    def device(self) -> torch.device:
        """Device of the weights."""
        return next(self.model.parameters()).device

    def _forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One chunk through the network, ε channels only."""
        if self.is_dit:
            labels = torch.full((x.shape[0],), null_class(self.model), dtype=torch.long, device=x.device)
            out = self.model(x, t, labels).sample
        else:
            out = self.model(x, t).sample
        return out[:, :self.channels].float()

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """ε for images `x` at per-sample integer timesteps `t` (B,)."""
        t = t.expand(x.shape[0]) if t.ndim == 0 or t.numel() == 1 else t
        self.evaluations += x.shape[0]
        return chunked(self._forward, self.chunk, x, t)

    def parameters(self) -> int:
        """Number of weights of the frozen network."""
        return sum(p.numel() for p in self.model.parameters())


def _model_class(folder: Path) -> tuple[Path, str]:
    """The folder holding config.json (the folder itself, or `unet/` / `transformer/`) and its `_class_name`."""
    for candidate in (folder, folder / "unet", folder / "transformer"):
        config = candidate / "config.json"
        if config.is_file():
            return candidate, json.loads(config.read_text()).get("_class_name", "")
    raise ModelLoadError(f"{folder} holds no diffusers model (no config.json in it or in unet/ or transformer/); "
                         "pass a save_pretrained folder of a UNet2DModel or DiTTransformer2DModel")


def load_backbone(path: str | Path, chunk: int = 16) -> FrozenEps:
    """Load the frozen unconditional model from a local save_pretrained folder (offline)."""
    folder, class_name = _model_class(Path(path))
    if class_name == "UNet2DModel":
        model = load_pretrained(UNet2DModel, folder)
        if model.config.num_class_embeds or model.config.class_embed_type:
            raise ModelLoadError(f"{folder} is a class-conditional UNet2DModel; DEFT needs an unconditional model")
    elif class_name == "DiTTransformer2DModel":
        model = load_dit(folder)
    else:
        raise ModelLoadError(f"{folder} is a {class_name or 'unknown'} model; the DEFT backbone must be a "
                             "UNet2DModel or DiTTransformer2DModel save_pretrained folder")
    return FrozenEps(model, chunk)
