"""The h-transform network: ε_φ = NN1(stack, t) − NN2(t)·g, a diffusers model saved with `save_pretrained`.

NN1 is a small `UNet2DModel` on the conditioning stack (x_t, x̂0, g and task extras) whose output convolution
starts at zero, so NN1 ≡ 0 at initialisation. `block="scale_shift"` gives it the two features of the official
guided-diffusion `CondUNetModel` as DEFT configures it (`use_scale_shift_norm: true`, `resblock_updown: true`,
alexdenker/DEFT@2495d46 `_configs/htransform_model/imagenet256_htransform.yaml` lines 22 and 28): the time embedding
scales and shifts the normalised features, h·(1 + scale) + shift, and a res-block with a down/up-sampling path
replaces each level's strided convolution / upsampling convolution. `block="diffusers_default"` is diffusers'
default blocks (additive time embedding, convolutional resampling).

NN2 is an MLP on the sinusoidal embedding of t whose last layer has weight 0 and bias `init_scaling_bias`, so at
initialisation ε_φ = −b0·g: the unconditional model plus a small DPS-like guidance evaluated at x̂0, without
backpropagation through the big network (DEFT's `CondUNetModel`). The minus sign is the ε-parametrisation of
"score + NN2·∇ log p(y|x̂0)" (ε = −sqrt(1 − ᾱ)·score; `epsilon_based` there).
"""

from __future__ import annotations

import torch
from diffusers import ModelMixin, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from torch import nn

from deft.config import HeadConfig

# Per `block`: the down block of a level without / with attention, and the UNet2DModel settings of its resampling
# and time conditioning (the up blocks are the mirror names).
BLOCKS = {
    "scale_shift": (("ResnetDownsampleBlock2D", "AttnDownBlock2D"),
                    {"downsample_type": "resnet", "upsample_type": "resnet", "resnet_time_scale_shift": "scale_shift"}),
    "diffusers_default": (("DownBlock2D", "AttnDownBlock2D"), {}),
}


class HTransformHead(ModelMixin, ConfigMixin):
    """NN1(stack, t) − NN2(t)·g; `forward(stack, t, g)` returns the correction added to the frozen model's ε."""

    @register_to_config
    def __init__(self, in_channels: int, out_channels: int, sample_size: int, block_out_channels: tuple = (64, 64),
                 attention_levels: tuple = (False, False), layers_per_block: int = 1, attention_head_dim: int = 16,
                 norm_groups: int = 32, init_scaling_bias: float = 0.001, use_residual: bool = True,
                 block: str = "diffusers_default"):
        """Build NN1 (zero-initialised output) and NN2 (constant `init_scaling_bias` at initialisation).

        `block` defaults to "diffusers_default" here because head folders saved before the option existed have no
        `block` key and were built that way; `build_head` always passes the config's value.
        """
        super().__init__()
        (plain, attention), resampling = BLOCKS[block]
        down = tuple(attention if attn else plain for attn in attention_levels)
        up = tuple(name.replace("Down", "Up") for name in reversed(down))
        # attn_norm_num_groups: with scale-shift diffusers would drop the attention's group norm (guided-diffusion
        # keeps it); for the default blocks it is the value diffusers picks anyway.
        self.nn1 = UNet2DModel(sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
                               block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
                               down_block_types=down, up_block_types=up, norm_num_groups=norm_groups,
                               attn_norm_num_groups=norm_groups, attention_head_dim=attention_head_dim, **resampling)
        nn.init.zeros_(self.nn1.conv_out.weight)
        nn.init.zeros_(self.nn1.conv_out.bias)
        width = block_out_channels[0]
        self.embedding_dim = width
        self.nn2 = nn.Sequential(nn.Linear(width, 4 * width), nn.SiLU(), nn.Linear(4 * width, 4 * width), nn.SiLU(),
                                 nn.Linear(4 * width, 1))
        nn.init.zeros_(self.nn2[-1].weight)
        nn.init.constant_(self.nn2[-1].bias, init_scaling_bias)

    def scaling(self, t: torch.Tensor) -> torch.Tensor:
        """NN2(t): one scalar per sample, shaped B×1×1×1."""
        embedding = get_timestep_embedding(t, self.embedding_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        return self.nn2(embedding.to(self.nn2[0].weight.dtype)).view(-1, 1, 1, 1)

    def forward(self, stack: torch.Tensor, t: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """ε correction for the conditioning `stack` (B×in×H×W) at timesteps `t` with likelihood gradient `g`."""
        out = self.nn1(stack, t).sample
        if self.config.use_residual:
            out = out - self.scaling(t) * g
        return out


def build_head(cfg: HeadConfig, stack_channels: int, image_channels: int, sample_size: int) -> HTransformHead:
    """The head for a task's stack width and the backbone's image size, from the `head` config section."""
    mult = cfg.multipliers()
    sides = [sample_size // 2 ** level for level in range(len(mult))]
    attention = cfg.attention_sides()
    return HTransformHead(in_channels=stack_channels, out_channels=image_channels, sample_size=sample_size,
                          block_out_channels=tuple(cfg.base_channels * m for m in mult),
                          attention_levels=tuple(side in attention for side in sides),
                          layers_per_block=cfg.layers_per_block, attention_head_dim=cfg.attention_head_dim,
                          norm_groups=cfg.norm_groups, init_scaling_bias=cfg.init_scaling_bias,
                          use_residual=cfg.use_residual, block=cfg.block)
