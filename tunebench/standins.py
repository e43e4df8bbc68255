"""Stand-ins for the paper scale's downloads, in their on-disk formats, with random weights and made-up images: the
`facebook/DiT-XL-2-256` pipeline folder and ImageFolder datasets. The rehearsal writes them
(deft.rehearsal_inputs, docs/workflow.md "Rehearsal") so that the paper DAG's every rule runs on a CPU in minutes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiTTransformer2DModel
from PIL import Image

from tunebench.io import write_json


@dataclass(frozen=True)
class DitStandIn:
    """DiT-XL/2's transformer config (hub `facebook/DiT-XL-2-256`, transformer/config.json) shrunk in width and
    depth only (XL: 16 heads of 72, 28 layers), and sd-vae-ft-ema's (vae/config.json) shrunk likewise (XL: 128, 256,
    512, 512 channels in groups of 32, 2 res-blocks per level)."""

    num_heads: int = 2
    head_dim: int = 8
    num_layers: int = 1
    vae_channels: int = 16
    vae_layers: int = 1
    seed: int = 0


# The hub folder's transformer/config.json, minus the sizes the stand-in shrinks (DitStandIn).
HUB_TRANSFORMER_CONFIG = {
    "_class_name": "Transformer2DModel", "activation_fn": "gelu-approximate", "attention_bias": True,
    "cross_attention_dim": None, "dropout": 0.0, "in_channels": 4, "norm_elementwise_affine": False,
    "norm_num_groups": 32, "norm_type": "ada_norm_zero", "num_embeds_ada_norm": 1000, "num_vector_embeds": None,
    "only_cross_attention": False, "out_channels": 8, "patch_size": 2, "sample_size": 32, "upcast_attention": False,
    "use_linear_projection": False,
}
# The hub folder's model_index.json (DiTPipeline's components).
HUB_MODEL_INDEX = {"_class_name": "DiTPipeline", "scheduler": ["diffusers", "KarrasDiffusionSchedulers"],
                   "transformer": ["diffusers", "Transformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}


def write_dit_pipeline(folder: Path, spec: DitStandIn = DitStandIn()) -> Path:
    """A `facebook/DiT-XL-2-256` folder (model_index.json, transformer/, vae/, scheduler/) with random weights."""
    torch.manual_seed(spec.seed)
    hub = HUB_TRANSFORMER_CONFIG
    transformer = DiTTransformer2DModel(
        num_attention_heads=spec.num_heads, attention_head_dim=spec.head_dim, in_channels=hub["in_channels"],
        out_channels=hub["out_channels"], num_layers=spec.num_layers, sample_size=hub["sample_size"],
        patch_size=hub["patch_size"], num_embeds_ada_norm=hub["num_embeds_ada_norm"])
    transformer.save_pretrained(folder / "transformer")
    # The hub's config names the generic Transformer2DModel with its keys; diffusers loads it as the DiT it is.
    write_json(folder / "transformer/config.json", {**hub, "num_attention_heads": spec.num_heads,
                                                    "attention_head_dim": spec.head_dim,
                                                    "num_layers": spec.num_layers})
    channels = [spec.vae_channels] * 4
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=256,
                        block_out_channels=channels, layers_per_block=spec.vae_layers,
                        norm_num_groups=spec.vae_channels, down_block_types=["DownEncoderBlock2D"] * 4,
                        up_block_types=["UpDecoderBlock2D"] * 4)
    vae.save_pretrained(folder / "vae")
    DDIMScheduler(beta_start=1e-4, beta_end=0.02, beta_schedule="linear", clip_sample=False).save_pretrained(
        folder / "scheduler")
    (folder / "model_index.json").write_text(json.dumps(HUB_MODEL_INDEX, indent=2) + "\n")
    return folder


# The image files of a stand-in class folder, in turn: the modes and formats real datasets hold.
IMAGE_KINDS = (("RGB", "JPEG", ".jpg"), ("RGB", "PNG", ".png"), ("L", "JPEG", ".jpg"), ("CMYK", "JPEG", ".jpg"))


def write_image(path: Path, mode: str, fmt: str, rng: np.random.Generator) -> Path:
    """One random image of a random size around 48 px (datasets are not square), in `mode` and `fmt`."""
    height, width = rng.integers(32, 64, size=2)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, fmt)
    return path


def write_image_folder(root: Path, classes: int, seed: int, truncated: bool = True) -> list[Path]:
    """ROOT/{train,test}/CLASS/* with one image per class and split, the kinds of IMAGE_KINDS in turn, plus (with
    `truncated`) a JPEG cut in half in the first class of each split, which the readers must skip; return the
    files."""
    rng = np.random.default_rng(seed)
    files = []
    for split in ("train", "test"):
        for label in range(classes):
            folder = root / split / f"class_{label:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            mode, fmt, suffix = IMAGE_KINDS[label % len(IMAGE_KINDS)]
            files.append(write_image(folder / f"image_{label:04d}{suffix}", mode, fmt, rng))
        if truncated:
            whole = write_image(root / split / "class_0000/truncated.jpg", "RGB", "JPEG", rng).read_bytes()
            (root / split / "class_0000/truncated.jpg").write_bytes(whole[: len(whole) // 2])
            files.append(root / split / "class_0000/truncated.jpg")
    return files
