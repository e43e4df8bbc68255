"""A ControlNet for DiT: a trainable copy of the first blocks that reads a condition image, added through
zero-initialised projections to a frozen DiT (the PixArt-δ design; Diff-Tuning §4.3 trains ControlNets).

    controlnet = DiTControlNet.from_transformer(base, control_channels=1)   # canny edges
    model = ControlledDiT(base, controlnet)
    eps = model(x_t, t, labels, controls=edges).sample

The copy (`trunk`, a DiT with `num_blocks` blocks) starts as the base's patch embedding, embedder and first blocks.
Its input is the patch-embedded x_t plus `control_in(control_embed(c))`; after copied block i, `control_out[i]` of
its hidden state is added to the output of base block i. `control_in` and `control_out` start at zero, so training
starts from exactly the base model and the condition's influence grows from nothing.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from diffusers import ConfigMixin, DiTTransformer2DModel, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from tunebench.model_card import CardFacts
from tunebench.models import apply_dit_fixes, export_pretrained, load_pretrained, untied_embedders


class DiTControlNet(ModelMixin, ConfigMixin):
    """The trainable branch: a copy of the first blocks, the condition's patch embedding and the zero projections."""

    @register_to_config
    def __init__(self, control_channels: int, num_blocks: int, num_attention_heads: int, attention_head_dim: int,
                 in_channels: int, out_channels: int, sample_size: int, patch_size: int, num_embeds_ada_norm: int,
                 norm_eps: float = 1e-6, image_scale: int = 1):
        """Build the branch with random weights (use `from_transformer` to start from a base DiT). Conditions are
        images `image_scale` times the model input's side (8 for a latent DiT and pixel conditions)."""
        super().__init__()
        self.trunk = DiTTransformer2DModel(
            num_attention_heads=num_attention_heads, attention_head_dim=attention_head_dim, in_channels=in_channels,
            out_channels=out_channels, num_layers=num_blocks, sample_size=sample_size, patch_size=patch_size,
            num_embeds_ada_norm=num_embeds_ada_norm, norm_eps=norm_eps)
        apply_dit_fixes(self.trunk, check_tied=False)
        # The trunk's output layers are never used: the branch ends at its blocks.
        self.trunk.proj_out_1.requires_grad_(False)
        self.trunk.proj_out_2.requires_grad_(False)
        hidden = num_attention_heads * attention_head_dim
        # One token per patch of the model input: the condition's patches are image_scale times larger.
        patch = patch_size * image_scale
        self.control_embed = nn.Conv2d(control_channels, hidden, patch, stride=patch)
        self.control_in = nn.Linear(hidden, hidden)
        self.control_out = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(num_blocks))
        for layer in (self.control_in, *self.control_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @classmethod
    def from_transformer(cls, base: DiTTransformer2DModel, control_channels: int, num_blocks: int | None = None,
                         image_scale: int = 1) -> DiTControlNet:
        """A branch whose trunk copies `base`'s patch embedding, embedder and first `num_blocks` blocks (default:
        half of them, rounded down, at least one; PixArt-δ copies 13 of 28)."""
        depth = len(base.transformer_blocks)
        count = max(depth // 2, 1) if num_blocks is None else num_blocks
        if not 1 <= count <= depth:
            raise ValueError(f"num_blocks={num_blocks} must be between 1 and the base's {depth} blocks")
        cfg = base.config
        net = cls(control_channels, count, cfg.num_attention_heads, cfg.attention_head_dim, cfg.in_channels,
                  cfg.out_channels, cfg.sample_size, cfg.patch_size, cfg.num_embeds_ada_norm, cfg.norm_eps,
                  image_scale)
        state = {k: v for k, v in base.state_dict().items()
                 if not k.startswith("transformer_blocks.") or int(k.split(".")[1]) < count}
        net.trunk.load_state_dict(state)
        return net

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, class_labels: torch.Tensor,
                controls: torch.Tensor) -> list[torch.Tensor]:
        """The residual added after each of the base's first `num_blocks` blocks (B × tokens × hidden each)."""
        hidden = self.trunk.pos_embed(x)
        tokens = self.control_embed(controls.to(hidden.dtype)).flatten(2).transpose(1, 2)
        hidden = hidden + self.control_in(tokens)
        residuals = []
        for block, project in zip(self.trunk.transformer_blocks, self.control_out):
            hidden = block(hidden, timestep=timestep, class_labels=class_labels)
            residuals.append(project(hidden))
        return residuals


class ControlledDiT(nn.Module):
    """A frozen base DiT steered by a DiTControlNet; called like the DiT, plus `controls=` (B×C×H×W in [-1, 1])."""

    def __init__(self, base: DiTTransformer2DModel, controlnet: DiTControlNet):
        """Freeze `base` and hook the branch's residuals onto the outputs of its first blocks."""
        super().__init__()
        if controlnet.config.num_blocks > len(base.transformer_blocks):
            raise ValueError(f"the ControlNet has {controlnet.config.num_blocks} blocks, the base only "
                             f"{len(base.transformer_blocks)}")
        self.base = base.requires_grad_(False)
        self.controlnet = controlnet
        self._residuals: list[torch.Tensor] | None = None
        # Hooks rather than a re-implemented forward: the base keeps diffusers' own forward pass.
        for index, block in enumerate(base.transformer_blocks[:controlnet.config.num_blocks]):
            block.register_forward_hook(self._add_residual(index))

    def _add_residual(self, index: int):
        """Forward hook of base block `index`: add the branch's residual of the current call, if any."""
        def hook(module, args, output):
            return output if self._residuals is None else output + self._residuals[index]
        return hook

    @property
    def config(self):
        """The base DiT's config (the samplers read channels, size and the null class from it)."""
        return self.base.config

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, class_labels: torch.Tensor,
                controls: torch.Tensor | None = None):
        """The base's output with the branch's residuals added (the base alone when `controls` is None)."""
        if controls is None:
            return self.base(x, timestep, class_labels)
        self._residuals = self.controlnet(x, timestep, class_labels, controls)
        try:
            return self.base(x, timestep, class_labels)
        finally:
            self._residuals = None


def export_controlnet(controlnet: DiTControlNet, folder: str | Path, run, extra: dict | None = None, *,
                      facts: CardFacts) -> Path:
    """save_pretrained folder (safetensors, atomic, resolved config in the sidecar, model card); the trunk's shared
    embedder is written once per block, as `export_dit` does."""
    untied = copy.deepcopy(controlnet)
    untied.trunk = untied_embedders(controlnet.trunk)
    return export_pretrained(untied, folder, run, extra, facts=facts)


def load_controlnet(folder: str | Path) -> DiTControlNet:
    """Load a branch written by `save_controlnet` and tie its trunk's embedders again."""
    net = load_pretrained(DiTControlNet, folder)
    apply_dit_fixes(net.trunk)
    return net.eval()
