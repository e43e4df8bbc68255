"""guided-diffusion's `UNetModel` state dict for a configuration, written from its unet.py (lines 471-617)
independently of the converter's key map (deft.adm_checkpoint): the names and shapes of every tensor, and random
weights in that layout. The converter's tests check the key map against it, and the rehearsal (tunebench's stand-in
inputs of the paper DAG, deft.rehearsal_inputs) writes a small ADM checkpoint with it for rule convert_adm.
"""

from __future__ import annotations

import math

import torch

from deft.adm_checkpoint import AdmConfig


def resblock_layout(prefix: str, cin: int, cout: int, emb: int) -> dict:
    """ResBlock(cin → cout) with scale-shift norm (unet.py lines 143-222): name → shape."""
    layout = {f"{prefix}.in_layers.0.weight": (cin,), f"{prefix}.in_layers.0.bias": (cin,),
              f"{prefix}.in_layers.2.weight": (cout, cin, 3, 3), f"{prefix}.in_layers.2.bias": (cout,),
              f"{prefix}.emb_layers.1.weight": (2 * cout, emb), f"{prefix}.emb_layers.1.bias": (2 * cout,),
              f"{prefix}.out_layers.0.weight": (cout,), f"{prefix}.out_layers.0.bias": (cout,),
              f"{prefix}.out_layers.3.weight": (cout, cout, 3, 3), f"{prefix}.out_layers.3.bias": (cout,)}
    if cin != cout:  # a 1×1 convolution (use_conv=False), else an Identity without tensors
        layout |= {f"{prefix}.skip_connection.weight": (cout, cin, 1, 1), f"{prefix}.skip_connection.bias": (cout,)}
    return layout


def attention_layout(prefix: str, channels: int) -> dict:
    """AttentionBlock (unet.py lines 259-295): GroupNorm, qkv and proj_out as 1×1 Conv1d."""
    return {f"{prefix}.norm.weight": (channels,), f"{prefix}.norm.bias": (channels,),
            f"{prefix}.qkv.weight": (3 * channels, channels, 1), f"{prefix}.qkv.bias": (3 * channels,),
            f"{prefix}.proj_out.weight": (channels, channels, 1), f"{prefix}.proj_out.bias": (channels,)}


def adm_layout(adm: AdmConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of guided-diffusion's UNetModel for `adm` (resblock_updown, scale-shift norm, no classes), in the
    order of UNetModel.__init__."""
    model, emb = adm.num_channels, 4 * adm.num_channels
    layout = {"time_embed.0.weight": (emb, model), "time_embed.0.bias": (emb,),
              "time_embed.2.weight": (emb, emb), "time_embed.2.bias": (emb,),
              "input_blocks.0.0.weight": (model * adm.channel_mult[0], adm.in_channels, 3, 3),
              "input_blocks.0.0.bias": (model * adm.channel_mult[0],)}
    ch = model * adm.channel_mult[0]
    chans, ds, block = [ch], 1, 1
    for level, mult in enumerate(adm.channel_mult):
        for _ in range(adm.num_res_blocks):
            layout |= resblock_layout(f"input_blocks.{block}.0", ch, mult * model, emb)
            ch = mult * model
            if ds in adm.attention_ds:
                layout |= attention_layout(f"input_blocks.{block}.1", ch)
            chans.append(ch)
            block += 1
        if level != len(adm.channel_mult) - 1:
            layout |= resblock_layout(f"input_blocks.{block}.0", ch, ch, emb)  # down=True
            chans.append(ch)
            block += 1
            ds *= 2
    layout |= resblock_layout("middle_block.0", ch, ch, emb) | attention_layout("middle_block.1", ch)
    layout |= resblock_layout("middle_block.2", ch, ch, emb)
    block = 0
    for level, mult in list(enumerate(adm.channel_mult))[::-1]:
        for i in range(adm.num_res_blocks + 1):
            layout |= resblock_layout(f"output_blocks.{block}.0", ch + chans.pop(), model * mult, emb)
            ch, index = model * mult, 1
            if ds in adm.attention_ds:
                layout |= attention_layout(f"output_blocks.{block}.1", ch)
                index = 2
            if level and i == adm.num_res_blocks:
                layout |= resblock_layout(f"output_blocks.{block}.{index}", ch, ch, emb)  # up=True
                ds //= 2
            block += 1
    return layout | {"out.0.weight": (ch,), "out.0.bias": (ch,), "out.2.weight": (adm.out_channels, ch, 3, 3),
                     "out.2.bias": (adm.out_channels,)}


def random_state(adm: AdmConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in `adm_layout`, none zero (unlike ADM's zero-initialised output convolutions, so that every
    tensor changes the output): weights N(0, 1/fan_in), norm scales near 1, biases N(0, 0.05²)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in adm_layout(adm).items():
        noise = torch.randn(shape, generator=generator)
        if len(shape) > 1:
            state[name] = noise / math.sqrt(math.prod(shape[1:]))
        elif ".norm." in name or "layers.0." in name or name.startswith("out.0."):
            state[name] = 1 + 0.1 * noise if name.endswith("weight") else 0.05 * noise
        else:
            state[name] = 0.05 * noise
    return state
