"""The h-transform head's official structure (guided-diffusion `CondUNetModel` as `imagenet256_htransform.yaml`
configures it) and the switches back to diffusers' default blocks."""

import dataclasses
import json

import pytest
import torch
from diffusers.models.resnet import ResnetBlock2D

from deft.config import HEAD_BLOCKS, DeftConfig, HeadConfig
from deft.head import BLOCKS, HTransformHead, build_head
from tunebench.config import ConfigError, resolve

SMALL = HeadConfig(base_channels=8, channel_mult="1,2", attention_resolutions="4", norm_groups=4)


def test_nn2_starts_at_the_official_bias():
    head = build_head(SMALL, 9, 3, 8)
    t, g = torch.tensor([0, 999]), torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert HeadConfig().init_scaling_bias == 0.001
    assert torch.allclose(head.scaling(t).flatten(), torch.full((2,), 0.001))
    assert torch.allclose(head(torch.randn(2, 9, 8, 8), t, g), -0.001 * g)
    other = build_head(dataclasses.replace(SMALL, init_scaling_bias=0.01), 9, 3, 8)
    assert torch.allclose(other.scaling(t).flatten(), torch.full((2,), 0.01))


def test_scale_shift_blocks_modulate_the_norm_and_resample_in_res_blocks():
    head = build_head(SMALL, 9, 3, 8)
    resnets = [m for m in head.nn1.modules() if isinstance(m, ResnetBlock2D)]
    assert all(r.time_embedding_norm == "scale_shift" for r in resnets)
    assert all(r.time_emb_proj.out_features == 2 * r.conv1.out_channels for r in resnets)  # a scale and a shift
    first, last = head.nn1.down_blocks[0], head.nn1.up_blocks[0]
    assert isinstance(first.downsamplers[0], ResnetBlock2D) and first.downsamplers[0].down
    assert isinstance(last.upsamplers[0], ResnetBlock2D) and last.upsamplers[0].up
    attention = [m for m in head.nn1.modules() if type(m).__name__ == "Attention"]
    assert attention and all(a.group_norm is not None for a in attention)  # guided-diffusion normalises first


def test_diffusers_default_blocks_are_the_previous_head():
    head = build_head(dataclasses.replace(SMALL, block="diffusers_default"), 9, 3, 8)
    resnets = [m for m in head.nn1.modules() if isinstance(m, ResnetBlock2D)]
    assert all(r.time_embedding_norm == "default" and not r.down and not r.up for r in resnets)
    assert type(head.nn1.down_blocks[0].downsamplers[0]).__name__ == "Downsample2D"
    scale_shift = build_head(SMALL, 9, 3, 8)
    count = sum(p.numel() for p in head.parameters())
    assert sum(p.numel() for p in scale_shift.parameters()) > count


def test_a_head_saved_without_the_block_key_loads_with_the_default_blocks(tmp_path):
    old = build_head(dataclasses.replace(SMALL, block="diffusers_default"), 9, 3, 8)
    old.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["block"]  # as written before the option existed
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded = HTransformHead.from_pretrained(tmp_path)
    assert loaded.config.block == "diffusers_default"
    for name, value in old.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_block_names_and_errors():
    assert tuple(BLOCKS) == HEAD_BLOCKS  # the light config names the blocks without importing diffusers
    with pytest.raises(ConfigError, match="config key 'head.block' is 'guided'; choose one of scale_shift"):
        resolve("smoke", {"head": {"block": "guided"}}, cls=DeftConfig)
