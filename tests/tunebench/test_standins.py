"""The paper-scale stand-ins of tunebench (the rehearsal's DiT-XL-2-256 folder and image folders) load through the
readers the paper scale uses."""

import json

import pytest
import torch
from PIL import Image

from tunebench.dataset_registry import DATASETS
from tunebench.datasets import ImageFolderDataset
from tunebench.models import load_dit, load_vae
from tunebench.standins import DitStandIn, write_dit_pipeline, write_image_folder

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_dit_folder_has_the_hub_layout_and_loads_as_a_shrunk_dit_xl2(tmp_path):
    folder = write_dit_pipeline(tmp_path / "DiT-XL-2-256", DitStandIn(num_heads=2, head_dim=8, num_layers=1))
    assert json.loads((folder / "model_index.json").read_text())["transformer"] == ["diffusers", "Transformer2DModel"]
    assert json.loads((folder / "transformer/config.json").read_text())["_class_name"] == "Transformer2DModel"
    assert (folder / "scheduler/scheduler_config.json").is_file()
    dit = load_dit(folder)  # the pipeline folder itself, as the paper runs pass it
    assert (dit.config.num_layers, dit.config.num_attention_heads, dit.config.attention_head_dim) == (1, 2, 8)
    assert (dit.config.sample_size, dit.config.patch_size, dit.config.in_channels, dit.config.out_channels,
            dit.config.num_embeds_ada_norm) == (32, 2, 4, 8, 1000)  # XL/2's, unshrunk
    vae = load_vae(folder)
    assert vae.config.latent_channels == 4 and list(vae.config.block_out_channels) == [16] * 4
    with torch.no_grad():
        assert tuple(vae.encode(torch.zeros(1, 3, 256, 256)).latent_dist.mean.shape) == (1, 4, 32, 32)


def test_the_image_folder_holds_every_kind_and_the_reader_skips_the_truncated_file(tmp_path):
    files = write_image_folder(tmp_path / "artbench10", DATASETS["artbench10"].num_classes, seed=0)
    modes = {Image.open(path).mode for path in files if path.name != "truncated.jpg"}
    assert modes == {"RGB", "L", "CMYK"} and {path.suffix for path in files} == {".jpg", ".png"}
    data = ImageFolderDataset(tmp_path / "artbench10/train", 256, 3, DATASETS["artbench10"])
    assert len(data) == 10 and len(data.class_names) == 10
    assert [path.rsplit("/", 1)[1] for path, _ in data.skipped] == ["truncated.jpg"]
    image, label = data[3]  # a CMYK JPEG, read as RGB at the paper's resolution
    assert tuple(image.shape) == (3, 256, 256) and label == 3
