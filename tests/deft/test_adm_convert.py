"""The ADM → diffusers converter (deft.adm_checkpoint, python -m deft.convert_adm) on guided-diffusion-layout state
dicts made here.

`256x256_diffusion_uncond.pt` itself is not available here. `deft.adm_layout` writes the tensor names and shapes
that guided-diffusion's `UNetModel.__init__` (guided_diffusion/unet.py lines 471-617) gives for a configuration,
independently of the converter's key map, and `adm_forward` is a minimal functional ADM forward pass over such a
state dict (unet.py `ResBlock._forward`, `AttentionBlock`, `QKVAttentionLegacy`, `UNetModel.forward`; nn.py
`GroupNorm32`, `timestep_embedding`). The full-size layout is checked on the meta device (no memory); a tiny model
with random weights (4 heads of 16 channels, attention at the two coarsest of three levels, a channel change, two
res-blocks per level) is converted, saved, loaded through deft.backbone and compared with `adm_forward`.
"""

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from diffusers import UNet2DModel

from deft.adm_checkpoint import (
    AdmCheckpointError,
    AdmConfig,
    build_unet,
    convert_state_dict,
    key_map,
    unet_config,
)
from deft.adm_layout import adm_layout, random_state
from deft.backbone import load_backbone
from deft.convert_adm import main as convert_main
from tests.import_graph import REPO_ROOT
from tunebench.models import read_sidecar, weights_sha256

pytestmark = pytest.mark.usefixtures("one_thread")

# 16 px, levels of 32, 64, 64 channels at 16, 8, 4 px, attention at 8 and 4 px (the real model: the three coarsest
# of six levels), 64-channel attention in 4 heads of 16
TINY = AdmConfig(image_size=16, num_channels=32, num_res_blocks=2, channel_mult=(1, 2, 2), attention_resolutions=(8, 4),
                 num_head_channels=16)
TINY_FLAGS = ["--image-size", "16", "--num-channels", "32", "--channel-mult", "1,2,2", "--attention-resolutions", "8,4",
              "--num-head-channels", "16"]  # --num-res-blocks: the default 2


#################################################################################
#    guided-diffusion's UNetModel.forward, written from unet.py for the tests    #
#################################################################################


def adm_forward(state: dict, adm: AdmConfig, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """guided-diffusion's UNetModel.forward (unet.py line 634) as functions of the state dict, float32."""
    def norm(h, prefix):  # GroupNorm32(32, channels): torch's default eps (nn.py lines 17-20, 93-100)
        return F.group_norm(h, 32, state[f"{prefix}.weight"], state[f"{prefix}.bias"], eps=1e-5)

    def conv(h, prefix, padding=1):
        return F.conv2d(h, state[f"{prefix}.weight"], state[f"{prefix}.bias"], padding=padding)

    def resblock(h, prefix, emb, resample=None):  # ResBlock._forward, unet.py lines 236-257
        inner = F.silu(norm(h, f"{prefix}.in_layers.0"))
        if resample is not None:
            inner, h = resample(inner), resample(h)
        inner = conv(inner, f"{prefix}.in_layers.2")
        emb_out = F.linear(F.silu(emb), state[f"{prefix}.emb_layers.1.weight"], state[f"{prefix}.emb_layers.1.bias"])
        scale, shift = emb_out[..., None, None].chunk(2, dim=1)
        inner = norm(inner, f"{prefix}.out_layers.0") * (1 + scale) + shift
        inner = conv(F.silu(inner), f"{prefix}.out_layers.3")
        skip = conv(h, f"{prefix}.skip_connection", 0) if f"{prefix}.skip_connection.weight" in state else h
        return skip + inner

    def attention(h, prefix):  # AttentionBlock._forward with QKVAttentionLegacy, unet.py lines 299-358
        b, c, height, width = h.shape
        flat = h.reshape(b, c, -1)
        qkv = F.conv1d(norm(flat, f"{prefix}.norm"), state[f"{prefix}.qkv.weight"], state[f"{prefix}.qkv.bias"])
        heads, ch = c // adm.num_head_channels, adm.num_head_channels
        q, k, v = qkv.reshape(b * heads, 3 * ch, -1).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
        a = torch.einsum("bts,bcs->bct", weight, v).reshape(b, c, -1)
        out = F.conv1d(a, state[f"{prefix}.proj_out.weight"], state[f"{prefix}.proj_out.bias"])
        return (flat + out).reshape(b, c, height, width)

    half = adm.num_channels // 2  # timestep_embedding: cos then sin, nn.py lines 103-118
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    emb = F.linear(emb, state["time_embed.0.weight"], state["time_embed.0.bias"])
    emb = F.linear(F.silu(emb), state["time_embed.2.weight"], state["time_embed.2.bias"])

    down = lambda h: F.avg_pool2d(h, 2)  # noqa: E731  (Downsample without conv)
    up = lambda h: F.interpolate(h, scale_factor=2, mode="nearest")  # noqa: E731
    h = conv(x, "input_blocks.0.0")
    hs = [h]
    levels = len(adm.channel_mult)
    block = 1
    for level in range(levels):
        for _ in range(adm.num_res_blocks):
            h = resblock(h, f"input_blocks.{block}.0", emb)
            if f"input_blocks.{block}.1.qkv.weight" in state:
                h = attention(h, f"input_blocks.{block}.1")
            hs.append(h)
            block += 1
        if level != levels - 1:
            h = resblock(h, f"input_blocks.{block}.0", emb, resample=down)
            hs.append(h)
            block += 1
    h = resblock(h, "middle_block.0", emb)
    h = attention(h, "middle_block.1")
    h = resblock(h, "middle_block.2", emb)
    block = 0
    for level in reversed(range(levels)):
        for i in range(adm.num_res_blocks + 1):
            h = resblock(torch.cat([h, hs.pop()], dim=1), f"output_blocks.{block}.0", emb)
            index = 1
            if f"output_blocks.{block}.1.qkv.weight" in state:
                h = attention(h, f"output_blocks.{block}.1")
                index = 2
            if level and i == adm.num_res_blocks:
                h = resblock(h, f"output_blocks.{block}.{index}", emb, resample=up)
            block += 1
    return conv(F.silu(norm(h, "out.0")), "out.2")


#################################################################################
#                                    Tests                                       #
#################################################################################


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """(path, state): random TINY weights saved as guided-diffusion saves them, a raw state dict."""
    state = random_state(TINY)
    path = tmp_path_factory.mktemp("adm") / "tiny_adm.pt"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def converted(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint converted by the command line."""
    out = tmp_path_factory.mktemp("converted") / "model"
    convert_main(["--checkpoint", str(tiny_checkpoint[0]), "--out", str(out), *TINY_FLAGS])
    return out


def test_the_default_config_is_the_256x256_uncond_model():
    config = unet_config()
    assert config["block_out_channels"] == [256, 256, 512, 512, 1024, 1024] and config["layers_per_block"] == 2
    assert config["down_block_types"] == ["ResnetDownsampleBlock2D"] * 3 + ["AttnDownBlock2D"] * 3
    assert config["up_block_types"] == ["AttnUpBlock2D"] * 3 + ["ResnetUpsampleBlock2D"] * 3
    assert (config["out_channels"], config["attention_head_dim"], config["num_class_embeds"]) == (6, 64, None)
    assert config["resnet_time_scale_shift"] == "scale_shift" and config["norm_eps"] == 1e-5


@pytest.mark.parametrize("adm", [AdmConfig(), TINY], ids=["256x256_uncond", "tiny"])
def test_every_adm_tensor_maps_to_one_diffusers_tensor_of_the_right_shape(adm):
    layout = adm_layout(adm)
    mapping = key_map(adm)
    assert {old for old, _ in mapping.values()} == set(layout)  # every ADM tensor is used, none is invented
    with torch.device("meta"):
        state = {name: torch.empty(shape) for name, shape in layout.items()}
        model = UNet2DModel(**unet_config(adm))
        converted = convert_state_dict(state, adm)
    expected = model.state_dict()
    assert set(converted) == set(expected)
    assert all(converted[key].shape == expected[key].shape for key in expected)
    # the same number of weights on both sides (qkv splits in three; the rest is one to one)
    assert sum(math.prod(shape) for shape in layout.values()) == sum(t.numel() for t in expected.values())
    if adm == AdmConfig():
        assert sum(math.prod(shape) for shape in layout.values()) == 552_814_086


def test_qkv_rows_are_regrouped_per_head_in_the_legacy_order():
    adm = AdmConfig(image_size=16, num_channels=32, channel_mult=(1,), attention_resolutions=(16,),
                    num_head_channels=8, num_res_blocks=1)
    state = random_state(adm)
    qkv = torch.arange(3 * 32, dtype=torch.float32)  # row r of the fused projection holds the value r
    state["middle_block.1.qkv.bias"] = qkv
    converted = convert_state_dict(state, adm)
    q, k, v = (converted[f"mid_block.attentions.0.to_{p}.bias"] for p in "qkv")
    # 4 heads of 8: rows [0, 24) are head 0's q, k, v, rows [24, 48) head 1's, ...
    assert q.tolist() == [24 * h + i for h in range(4) for i in range(8)]
    assert k.tolist() == [24 * h + 8 + i for h in range(4) for i in range(8)]
    assert v.tolist() == [24 * h + 16 + i for h in range(4) for i in range(8)]


def test_the_converted_model_computes_what_adm_computes(tiny_checkpoint, converted):
    _, state = tiny_checkpoint
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(3, 3, 16, 16, generator=generator)
    t = torch.tensor([0, 417, 999])
    with torch.no_grad():
        reference = adm_forward(state, TINY, x, t)
        model = UNet2DModel.from_pretrained(converted).eval()
        out = model(x, t).sample
        backbone = load_backbone(converted)
        eps = backbone(x, t)
    assert reference.shape == out.shape == (3, 6, 16, 16) and reference.abs().mean() > 0.1
    torch.testing.assert_close(out, reference, rtol=1e-4, atol=1e-4)
    # the backbone loader keeps ε, ADM's first 3 channels (guided-diffusion splits ε from v with th.split(out, 3))
    assert eps.shape == (3, 3, 16, 16) and backbone.channels == 3
    torch.testing.assert_close(eps, reference[:, :3], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(reference[:, :3], reference[:, 3:], atol=1e-2)


def test_the_folder_names_its_source_and_the_conversion_is_deterministic(tiny_checkpoint, converted, tmp_path):
    path, state = tiny_checkpoint
    sidecar = read_sidecar(converted)
    assert sidecar["converted_from"]["checkpoint"] == str(path) and len(sidecar["converted_from"]["sha256"]) == 64
    assert sidecar["output_channels"] == {"eps": [0, 3], "v": [3, 6]}
    assert "256x256_diffusion_uncond.pt" in (converted / "README.md").read_text()
    again = tmp_path / "again"
    convert_main(["--checkpoint", str(path), "--out", str(again), *TINY_FLAGS])
    assert weights_sha256(again) == weights_sha256(converted)
    # round trip: every ADM tensor is in the saved model, qkv reassembled per head
    model = UNet2DModel.from_pretrained(converted)
    saved = model.state_dict()
    for new, (old, how) in key_map(TINY).items():
        if how == "copy":
            assert torch.equal(saved[new], state[old]), new
    qkv = torch.stack([saved[f"mid_block.attentions.0.to_{p}.weight"].reshape(4, 16, 64) for p in "qkv"], dim=1)
    assert torch.equal(qkv.reshape(192, 64, 1), state["middle_block.1.qkv.weight"])


def test_a_half_precision_checkpoint_is_widened_to_float32():
    state = {name: tensor.half() for name, tensor in random_state(TINY).items()}
    model = build_unet(convert_state_dict(state, TINY), TINY)
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_wrong_files_are_refused_naming_the_file_and_the_keys(tmp_path, tiny_checkpoint, capsys):
    _, state = tiny_checkpoint
    missing = tmp_path / "absent.pt"
    with pytest.raises(AdmCheckpointError, match=r"absent\.pt does not exist.*256x256_diffusion_uncond\.pt"):
        convert_main(["--checkpoint", str(missing), "--out", str(tmp_path / "out"), *TINY_FLAGS])
    wrong = tmp_path / "wrong.pt"
    bad = {key: value for key, value in state.items() if key != "out.2.bias"} | {"label_emb.weight": torch.zeros(3)}
    torch.save(bad, wrong)
    with pytest.raises(AdmCheckpointError, match=r"wrong\.pt.*1 missing keys: out\.2\.bias; 1 unexpected keys: "
                                                 r"label_emb\.weight.*class-conditional"):
        convert_main(["--checkpoint", str(wrong), "--out", str(tmp_path / "out"), *TINY_FLAGS])
    wrapped = tmp_path / "wrapped.pt"
    torch.save({"state_dict": state, "step": 3}, wrapped)
    with pytest.raises(AdmCheckpointError, match=r"wrapped\.pt is a dict, not a raw state dict"):
        convert_main(["--checkpoint", str(wrapped), "--out", str(tmp_path / "out"), *TINY_FLAGS])
    assert not (tmp_path / "out").exists()
    # the 256x256 uncond configuration on the tiny file: every tensor of the deeper levels is missing
    with pytest.raises(AdmCheckpointError, match=r"missing keys: .* and \d+ more"):
        convert_state_dict(state, AdmConfig(), source="tiny")
    # right names, wrong shapes (32-channel heads would also need other qkv rows; here the time embedding)
    misshaped = dict(state) | {"time_embed.0.weight": torch.zeros(128, 16)}
    with pytest.raises(AdmCheckpointError, match=r"1 wrong shapes: time_embedding\.linear_1\.weight \(128, 16\) "
                                                 r"from time_embed\.0\.weight"):
        convert_state_dict(misshaped, TINY, source="tiny")


def test_the_command_line_reports_a_bad_file_in_one_line(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "deft.convert_adm", "--checkpoint", str(tmp_path / "none.pt"),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ADM checkpoint") and "none.pt does not exist" in result.stderr
