"""The paper-scale code path on CPU: a DiT on VAE latents (conftest's tiny AutoencoderKL), 3-of-4 channel CFG."""

import numpy as np
import pytest

from tunebench import pretrain, sample
from tunebench.config import ConfigError

LATENT = ["--scale", "smoke", "--set", "model.sample_size=8", "--set", "model.in_channels=4",
          "--set", "model.patch_size=2", "--set", "sample.guided_channels=3"]


def test_latent_dit_trains_and_samples_through_the_vae(tiny_vae, tmp_path):
    run = tmp_path / "run"
    pretrain.main([*LATENT, "--set", f"model.vae={tiny_vae}", "--set", "train.steps=2", "--out", str(run),
                   "--no-progress"])
    out = tmp_path / "samples"
    sample.main([*LATENT, "--set", "sample.steps=3", "--model", str(run / "model"), "--out", str(out),
                 "--seeds", "0-2", "--no-progress"])
    images = np.load(out / "samples.npz")["images"]
    assert images.shape == (3, 16, 16, 3)  # decoded back to pixels by the VAE recorded with the model


def test_latent_shape_mismatch_is_named(tiny_vae, tmp_path):
    with pytest.raises(ConfigError, match="model.sample_size"):
        pretrain.main([*LATENT, "--set", "model.sample_size=16", "--set", f"model.vae={tiny_vae}",
                       "--out", str(tmp_path)])
