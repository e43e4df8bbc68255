"""OpenAI guided-diffusion (ADM) checkpoints as diffusers `UNet2DModel`s: the backbone of DEFT's paper scale.

DEFT's frozen model is ADM's unconditional ImageNet-256 model, `256x256_diffusion_uncond.pt` (guided-diffusion
README.md line 70: attention at 32, 16 and 8 px, 256 channels, 2 res-blocks per level, 64-channel heads, learned σ,
res-block up/down sampling, scale-shift norm; `script_util.create_model`, lines 130-180, with channel_mult
(1, 1, 2, 2, 4, 4) for 256 px). `convert_checkpoint` turns such a file into a `save_pretrained` folder that
`deft.backbone.load_backbone` reads; `python -m deft.convert_adm` is its command line.

The reference is diffusers' `scripts/convert_adm_to_diffusers.py` (commit 111eac139f, `LARGE_256_UNET_CONFIG`,
lines 44-72) with the key mapping of `scripts/convert_consistency_to_diffusers.py` (`convert_resnet`, line 123;
`convert_attention`, line 142; `con_pt_to_diffuser`, line 164); neither ships in the diffusers package. This module
is written for the suite and departs from them in three places, each checked against guided-diffusion's
`guided_diffusion/unet.py` and `nn.py`:

- **q, k, v**: the uncond model is trained without `use_new_attention_order`, so its attention is
  `QKVAttentionLegacy` (unet.py line 328), which splits the heads *before* q, k, v (line 347: the 3·C rows of
  `qkv` are H blocks of [q_h; k_h; v_h]). diffusers' scripts take q, k, v as the three thirds of the rows
  (`chunk(3)`, convert_consistency_to_diffusers.py line 143), the layout of `QKVAttention` (the new order, unet.py
  line 361), which with 16 heads would mix the heads' queries, keys and values. Here the rows are regrouped per head.
- **GroupNorm eps**: ADM's `normalization` is `GroupNorm32(32, channels)` (nn.py lines 17 and 93-100), torch's
  default eps 1e-5; `LARGE_256_UNET_CONFIG` says `norm_eps: 1e-06`. Here 1e-5.
- **Attention norms**: diffusers' `UNetMidBlock2D` drops the attention's GroupNorm under scale-shift norm unless
  `attn_norm_num_groups` is set (unet_2d_blocks.py, `attn_groups`), while ADM's middle attention has one
  (unet.py lines 539-562); `LARGE_256_UNET_CONFIG` does not set it (the consistency script's configs do). Here 32.

Everything else follows the reference: `time_embed` → `time_embedding` (ADM's cos-then-sin embedding, nn.py
lines 103-118, is diffusers' `flip_sin_to_cos=True, freq_shift=0`), each ADM level → one down block
(`AttnDownBlock2D` where the level's downsampling factor is an attention resolution, `ResnetDownsampleBlock2D`
otherwise) whose downsampler is the level's `down=True` ResBlock, the middle block → `mid_block`, the output levels
→ up blocks with `num_res_blocks + 1` resnets and the `up=True` ResBlock as upsampler, `out` → `conv_norm_out`,
`conv_out`. The 6 output channels keep their order: the first 3 are ε, the last 3 the variance interpolation v
(guided-diffusion `gaussian_diffusion.py` line 264, `th.split(model_output, C, dim=1)`), which is what
`deft.backbone.FrozenEps` expects.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers import UNet2DModel

from tunebench.io import atomic_dir, file_sha256, torch_load
from tunebench.models import MODEL_CARD, SIDECAR, ModelLoadError

CHECKPOINT_NAME = "256x256_diffusion_uncond.pt"
CHECKPOINT_URL = f"https://openaipublic.blob.core.windows.net/diffusion/jul-2021/{CHECKPOINT_NAME}"
GROUPS = 32  # GroupNorm32(32, channels): guided-diffusion nn.py line 100
NORM_EPS = 1e-5  # torch's GroupNorm default, which GroupNorm32 keeps

# How a diffusers tensor is made from its guided-diffusion tensor.
COPY = "copy"  # unchanged
LINEAR = "linear"  # a 1×1 Conv1d weight (out, in, 1) as a Linear weight (out, in); biases are copied
QKV = ("q", "k", "v")  # one third of a legacy-order qkv projection, regrouped per head (module docstring)


class AdmCheckpointError(ModelLoadError):
    """A file is not a guided-diffusion UNetModel state dict of the expected configuration; the message names the
    file and the missing, unexpected or mis-shaped keys."""


@dataclass(frozen=True)
class AdmConfig:
    """The `create_model` flags (guided-diffusion script_util.py line 130) that fix an ADM model's tensors.

    The defaults are `256x256_diffusion_uncond.pt`'s (README.md line 70). Only what the converter maps is a field:
    the model must use scale-shift norm and res-block up/down sampling, be unconditional and use the legacy
    attention order, as that model does.
    """

    image_size: int = 256
    num_channels: int = 256
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)  # script_util.py line 152, the 256 px default
    attention_resolutions: tuple[int, ...] = (32, 16, 8)  # in pixels, as the --attention_resolutions flag
    num_head_channels: int = 64
    learn_sigma: bool = True
    in_channels: int = 3

    @property
    def attention_ds(self) -> set[int]:
        """The downsampling factors with attention (script_util.py lines 162-164: image_size // resolution)."""
        return {self.image_size // resolution for resolution in self.attention_resolutions}

    @property
    def out_channels(self) -> int:
        """ε, and v when σ is learned (script_util.py line 170)."""
        return 2 * self.in_channels if self.learn_sigma else self.in_channels


def unet_config(adm: AdmConfig = AdmConfig()) -> dict:
    """The `UNet2DModel` arguments of the ADM model `adm` (for the defaults, diffusers' `LARGE_256_UNET_CONFIG`
    with the two changes of the module docstring: norm_eps 1e-5 and attn_norm_num_groups 32)."""
    attention = [2 ** level in adm.attention_ds for level in range(len(adm.channel_mult))]
    return {
        "sample_size": adm.image_size,
        "in_channels": adm.in_channels,
        "out_channels": adm.out_channels,
        "layers_per_block": adm.num_res_blocks,
        "block_out_channels": [adm.num_channels * mult for mult in adm.channel_mult],
        "down_block_types": ["AttnDownBlock2D" if a else "ResnetDownsampleBlock2D" for a in attention],
        "up_block_types": ["AttnUpBlock2D" if a else "ResnetUpsampleBlock2D" for a in reversed(attention)],
        "attention_head_dim": adm.num_head_channels,
        "downsample_type": "resnet",
        "upsample_type": "resnet",
        "resnet_time_scale_shift": "scale_shift",
        "norm_num_groups": GROUPS,
        "attn_norm_num_groups": GROUPS,
        "norm_eps": NORM_EPS,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "act_fn": "silu",
        "num_class_embeds": None,
    }


def _resnet(new: str, old: str, skip: bool) -> dict[str, tuple[str, str]]:
    """A ResBlock (guided-diffusion unet.py line 143) as a diffusers ResnetBlock2D; `skip`: it changes the channel
    count, so it has a 1×1 skip convolution."""
    names = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
             "norm2": "out_layers.0", "conv2": "out_layers.3", **({"conv_shortcut": "skip_connection"} if skip else {})}
    return {f"{new}.{a}.{p}": (f"{old}.{b}.{p}", COPY) for a, b in names.items() for p in ("weight", "bias")}


def _attention(new: str, old: str) -> dict[str, tuple[str, str]]:
    """An AttentionBlock (unet.py line 259) as a diffusers Attention: its 1×1 Conv1d projections become Linears."""
    keys = {f"{new}.group_norm.{p}": (f"{old}.norm.{p}", COPY) for p in ("weight", "bias")}
    for part in QKV:
        keys[f"{new}.to_{part}.weight"] = (f"{old}.qkv.weight", part)
        keys[f"{new}.to_{part}.bias"] = (f"{old}.qkv.bias", part)
    keys[f"{new}.to_out.0.weight"] = (f"{old}.proj_out.weight", LINEAR)
    keys[f"{new}.to_out.0.bias"] = (f"{old}.proj_out.bias", COPY)
    return keys


def key_map(adm: AdmConfig = AdmConfig()) -> dict[str, tuple[str, str]]:
    """diffusers key → (guided-diffusion key, how it is converted) for every tensor of the ADM model `adm`.

    The guided-diffusion names are those of `UNetModel.__init__` (unet.py lines 471-617): `input_blocks.K.0` is the
    K-th input block's ResBlock and `.1` its AttentionBlock; `output_blocks.K.{1,2}` the upsampling ResBlock after
    the AttentionBlock, if any.
    """
    keys: dict[str, tuple[str, str]] = {}
    for new, old in (("time_embedding.linear_1", "time_embed.0"), ("time_embedding.linear_2", "time_embed.2"),
                     ("conv_in", "input_blocks.0.0"), ("conv_norm_out", "out.0"), ("conv_out", "out.2")):
        keys.update({f"{new}.{p}": (f"{old}.{p}", COPY) for p in ("weight", "bias")})
    levels = len(adm.channel_mult)
    channels = [adm.num_channels * mult for mult in adm.channel_mult]
    block, previous = 1, channels[0]
    for level in range(levels):
        attention = 2 ** level in adm.attention_ds
        for j in range(adm.num_res_blocks):
            keys.update(_resnet(f"down_blocks.{level}.resnets.{j}", f"input_blocks.{block}.0",
                                skip=j == 0 and channels[level] != previous))
            if attention:
                keys.update(_attention(f"down_blocks.{level}.attentions.{j}", f"input_blocks.{block}.1"))
            block += 1
        if level != levels - 1:
            keys.update(_resnet(f"down_blocks.{level}.downsamplers.0", f"input_blocks.{block}.0", skip=False))
            block += 1
        previous = channels[level]
    keys.update(_resnet("mid_block.resnets.0", "middle_block.0", skip=False))
    keys.update(_attention("mid_block.attentions.0", "middle_block.1"))
    keys.update(_resnet("mid_block.resnets.1", "middle_block.2", skip=False))
    block = 0
    for i, level in enumerate(reversed(range(levels))):
        attention = 2 ** level in adm.attention_ds
        for j in range(adm.num_res_blocks + 1):
            # every output ResBlock takes the concatenation with a skip, so its channel count always changes
            keys.update(_resnet(f"up_blocks.{i}.resnets.{j}", f"output_blocks.{block}.0", skip=True))
            if attention:
                keys.update(_attention(f"up_blocks.{i}.attentions.{j}", f"output_blocks.{block}.1"))
            block += 1
        if level != 0:  # unet.py line 592: the last block of every level but the first upsamples
            keys.update(_resnet(f"up_blocks.{i}.upsamplers.0", f"output_blocks.{block - 1}.{2 if attention else 1}",
                                skip=False))
    return keys


def convert_tensor(tensor: torch.Tensor, how: str, head_channels: int) -> torch.Tensor:
    """The diffusers tensor made from a guided-diffusion one (`how`: COPY, LINEAR or a part of QKV), as float32.

    A qkv weight (3·C, C, 1) or bias (3·C,) of the legacy order holds H = C / head_channels blocks of
    [q_h; k_h; v_h] (head_channels rows each); part p is the p-th row group of every block, heads in order.
    """
    tensor = tensor.detach().to(torch.float32)
    if how == COPY:
        return tensor.contiguous()
    if how == LINEAR:
        return tensor.reshape(tensor.shape[0], -1).contiguous()
    rows = tensor.shape[0]
    if rows % (3 * head_channels):
        raise ValueError(f"a qkv tensor of {rows} rows is not 3 × heads × {head_channels} head channels")
    blocks = tensor.reshape(rows // (3 * head_channels), 3, head_channels, *tensor.shape[1:])
    part = blocks[:, QKV.index(how)].reshape(rows // 3, *tensor.shape[1:])
    return part.reshape(rows // 3, -1).clone() if tensor.ndim > 1 else part.clone()


def _describe(keys: list[str], limit: int = 6) -> str:
    """At most `limit` keys and how many more."""
    shown = ", ".join(keys[:limit])
    return f"{shown} and {len(keys) - limit} more" if len(keys) > limit else shown


def convert_state_dict(state: dict, adm: AdmConfig = AdmConfig(), source: str = "the state dict") -> dict:
    """The diffusers `UNet2DModel` state dict of a guided-diffusion UNetModel state dict (every key used once, none
    left over), shape-checked against `unet_config(adm)`; AdmCheckpointError naming `source` and the keys if not."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kind = type(state).__name__
        raise AdmCheckpointError(f"{source} is a {kind}, not a raw state dict (name → tensor) of a guided-diffusion "
                                 f"UNetModel such as {CHECKPOINT_NAME}")
    mapping = key_map(adm)
    used = {old for old, _ in mapping.values()}
    missing, unexpected = sorted(used - set(state)), sorted(set(state) - used)
    if missing or unexpected:
        problems = "; ".join(f"{len(keys)} {label}: {_describe(keys)}" for label, keys in
                             (("missing keys", missing), ("unexpected keys", unexpected)) if keys)
        hint = (" (label_emb: a class-conditional model; DEFT needs the unconditional one)"
                if any(key.startswith("label_emb.") for key in unexpected) else "")
        raise AdmCheckpointError(f"{source} is not a guided-diffusion UNetModel state dict of {adm}: {problems}{hint}")
    converted = {}
    for new, (old, how) in mapping.items():
        try:
            converted[new] = convert_tensor(state[old], how, adm.num_head_channels)
        except ValueError as err:  # a qkv tensor whose rows are not heads × 3 × head channels
            raise AdmCheckpointError(f"{source}: {old} {tuple(state[old].shape)} does not fit {adm} ({err})") from None
    with torch.device("meta"):
        expected = {key: tuple(t.shape) for key, t in UNet2DModel(**unet_config(adm)).state_dict().items()}
    absent, extra = sorted(set(expected) - set(converted)), sorted(set(converted) - set(expected))
    misshaped = [f"{key} {tuple(converted[key].shape)} from {mapping[key][0]} (expected {expected[key]})"
                 for key in sorted(set(expected) & set(converted)) if tuple(converted[key].shape) != expected[key]]
    if absent or extra:  # a mapping that does not cover the diffusers model: a bug here, not a bad file
        raise RuntimeError(f"the ADM key map does not fit UNet2DModel: unmapped {_describe(absent)}; "
                           f"unknown {_describe(extra)}")
    if misshaped:
        raise AdmCheckpointError(f"{source} has tensors of other shapes than a guided-diffusion UNetModel of {adm}: "
                                 f"{len(misshaped)} wrong shapes: {_describe(misshaped, 4)}")
    return converted


def build_unet(converted: dict, adm: AdmConfig = AdmConfig()) -> UNet2DModel:
    """The `UNet2DModel` holding the converted tensors (built on the meta device and filled with assign=True, so
    the 550M-parameter model is never initialised at random only to be overwritten)."""
    with torch.device("meta"):
        model = UNet2DModel(**unet_config(adm))
    model.load_state_dict(converted, strict=True, assign=True)
    return model.eval()


def model_card(checkpoint: str) -> str:
    """The converted folder's README.md."""
    return f"""# ADM converted to diffusers by tunebench

A diffusers `UNet2DModel` (safetensors) made by `python -m deft.convert_adm` from the guided-diffusion checkpoint
`{checkpoint}` (OpenAI guided-diffusion, `{CHECKPOINT_NAME}`: {CHECKPOINT_URL}). `{SIDECAR}` records the
checkpoint's SHA-256 and the ADM configuration.

The model predicts 6 channels: the first 3 are ε, the last 3 the learned variance's interpolation v. Load it with
`deft.backbone.load_backbone(folder)` (ε only) or `UNet2DModel.from_pretrained(folder)`. The conversion and its
differences from diffusers' own scripts are described in `deft/adm_checkpoint.py`.
"""


def convert_checkpoint(checkpoint: str | Path, out: str | Path, adm: AdmConfig = AdmConfig()) -> Path:
    """Convert the guided-diffusion checkpoint file `checkpoint` (loaded weights-only) into a `save_pretrained`
    folder `out` (safetensors, float32) with a model card and a sidecar naming the source, written atomically."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise AdmCheckpointError(f"ADM checkpoint {checkpoint} does not exist; download {CHECKPOINT_NAME} from "
                                 f"{CHECKPOINT_URL} (on a machine with network) and pass its path")
    state = torch_load(checkpoint)
    model = build_unet(convert_state_dict(state, adm, source=str(checkpoint)), adm)
    sidecar = {"converted_from": {"checkpoint": str(checkpoint), "sha256": file_sha256(checkpoint),
                                  "format": "guided-diffusion UNetModel state dict", "adm_config": asdict(adm)},
               "converter": "deft.adm_checkpoint", "output_channels": {"eps": [0, adm.in_channels],
                                                                     "v": [adm.in_channels, adm.out_channels]}}
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / SIDECAR).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
        (tmp / MODEL_CARD).write_text(model_card(checkpoint.name))
    return Path(out)
