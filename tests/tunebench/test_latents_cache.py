"""The latent cache (tunebench.latents): both flips' VAE posteriors of a split; pre-training and Diff-Tuning from it
take the steps that encoding on the fly takes; a cache of other images or another VAE is refused, naming the file."""

import json
import re
import shutil

import pytest
import safetensors.torch
import torch
from diffusers import AutoencoderKL

from difftune import finetune
from difftune.controlnet import train as control_train
from tunebench import latent_cache, latents, pretrain
from tunebench.config import ConfigError
from tunebench.datasets import TensorImageDataset, load_dataset
from tunebench.io import input_fingerprint, save_npz, write_json
from tunebench.models import load_vae, vae_folder
from tunebench.training import normalise_pixels, posterior, to_model_space

DATASET = "digits"  # 1438 train images: the smallest registered split
# 8 px images (the smallest the datasets make) → 4×4×4 latents: a quarter of test_latent.py's encoder work.
DATA = ["--set", f"data.dataset={DATASET}", "--set", "data.resolution=8"]
LATENT = ["--scale", "smoke", *DATA, "--set", "model.sample_size=4", "--set", "model.in_channels=4",
          "--set", "model.patch_size=2", "--set", "sample.guided_channels=3"]
# Cached and encoded moments differ only by the encoder's float rounding (batches of other sizes), so losses and
# weights after a few AdamW steps agree to this relative tolerance (measured on CPU: bitwise equal; GPU kernels
# may depend on the batch size).
RTOL = 1e-5


@pytest.fixture(scope="module")
def cache(tiny_vae, tmp_path_factory):
    """The digits train split cached with the tiny VAE, 256 images per encoder call."""
    out = tmp_path_factory.mktemp("latents") / f"{DATASET}.safetensors"
    latents.main(["--scale", "smoke", *DATA, "--set", f"model.vae={tiny_vae}", "--batch-size", "256",
                  "--device", "cpu", "--out", str(out), "--no-progress"])
    return out


def stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def weights(run_dir, steps=3):
    """The raw and EMA weights of the final checkpoint."""
    folder = run_dir / "checkpoints" / f"checkpoint-{steps:07d}"
    return {name: safetensors.torch.load_file(folder / f"{name}.safetensors") for name in ("model", "ema")}


def assert_same_training(a, b):
    """Same per-step losses and final weights within RTOL."""
    rows_a, rows_b = stats(a), stats(b)
    assert [r["step"] for r in rows_a] == [r["step"] for r in rows_b] == [1, 2, 3]
    for row_a, row_b in zip(rows_a, rows_b):
        for key in ("loss", "mse", "vb", "target", "retention"):
            if key in row_a:
                assert row_b[key] == pytest.approx(row_a[key], rel=RTOL), key
    for kind, tensors in weights(a).items():
        for name, value in tensors.items():
            torch.testing.assert_close(weights(b)[kind][name], value, rtol=RTOL, atol=1e-7, msg=f"{kind} {name}")


@pytest.fixture(scope="module")
def pretrain_runs(cache, tiny_vae, tmp_path_factory):
    """Two 3-step latent pre-training runs: encoding each batch, and from the cache with the encoder disabled."""
    root = tmp_path_factory.mktemp("pretrain")
    common = [*LATENT, "--set", f"model.vae={tiny_vae}", "--set", "train.steps=3", "--set", "train.log_every=1",
              "--no-progress"]
    pretrain.main([*common, "--out", str(root / "encoded")])
    with pytest.MonkeyPatch.context() as patch:  # proves the cached run never encodes
        patch.setattr(AutoencoderKL, "encode", lambda *a, **k: pytest.fail("the cached run ran the encoder"))
        pretrain.main([*common, "--set", f"data.latents={cache}", "--out", str(root / "cached")])
    return root / "encoded", root / "cached"


def test_cache_holds_both_flips_of_every_image(cache, tiny_vae):
    data = load_dataset(DATASET, "train", 8, 3)
    tensors = safetensors.torch.load_file(cache)
    assert tensors["mean"].shape == tensors["std"].shape == (len(data), 2, 4, 4, 4)
    assert tensors["mean"].dtype == tensors["std"].dtype == torch.float32
    assert torch.equal(tensors["labels"], data.labels)
    sidecar = json.loads(cache.with_suffix(".json").read_text())
    assert (sidecar["dataset"], sidecar["split"], sidecar["resolution"], sidecar["images"]) == (
        DATASET, "train", 8, len(data))
    assert sidecar["vae"] == input_fingerprint(tiny_vae) and sidecar["config"]["model"]["vae"] == str(tiny_vae)
    assert not list(cache.parent.glob(".*.tmp"))  # written under a temporary name, renamed when complete
    vae = load_vae(tiny_vae)
    pixels = normalise_pixels(data.images[:5])
    with torch.no_grad():
        for flip, images in ((0, pixels), (1, pixels.flip(-1))):
            dist = vae.encode(images).latent_dist
            torch.testing.assert_close(tensors["mean"][:5, flip], dist.mean, rtol=0, atol=1e-6)
            torch.testing.assert_close(tensors["std"][:5, flip], dist.std, rtol=0, atol=1e-6)
    assert (tensors["mean"][:, 0] - tensors["mean"][:, 1]).abs().max() > 1e-3  # the flipped half is another image


def test_a_posterior_is_sampled_as_diffusers_samples_an_encoding(tiny_vae):
    vae = load_vae(tiny_vae)
    pixels = normalise_pixels(load_dataset(DATASET, "train", 8, 3).images[:4])
    with torch.no_grad():
        expected = vae.encode(pixels).latent_dist.sample(torch.Generator().manual_seed(3)) * 0.18215
    for batch in (pixels, posterior(pixels, vae)):
        assert torch.equal(to_model_space(batch, vae, 0.18215, torch.Generator().manual_seed(3)), expected)


def test_moments_do_not_depend_on_the_batch_size(cache, tiny_vae):
    data = load_dataset(DATASET, "train", 8, 3)
    first = TensorImageDataset(data.images[:12], data.labels[:12], data.spec, "train")
    mean, std = latent_cache.encode_dataset(first, load_vae(tiny_vae), batch_size=3, device="cpu", progress=False)
    tensors = safetensors.torch.load_file(cache)  # encoded 256 at a time
    torch.testing.assert_close(mean, tensors["mean"][:12], rtol=0, atol=1e-6)
    torch.testing.assert_close(std, tensors["std"][:12], rtol=0, atol=1e-6)


def test_pretraining_from_the_cache_equals_encoding(pretrain_runs):
    encoded, cached = pretrain_runs
    assert_same_training(encoded, cached)
    assert json.loads((cached / "config.json").read_text())["data"]["latents"].endswith(f"{DATASET}.safetensors")


def test_a_run_resumes_with_the_cache(pretrain_runs, cache, tiny_vae, tmp_path):
    """data.latents may change on resume (RESUMABLE_CHANGES): 2 encoded steps + 1 cached = 3 encoded steps."""
    common = [*LATENT, "--set", f"model.vae={tiny_vae}", "--set", "train.log_every=1", "--out", str(tmp_path),
              "--no-progress"]
    pretrain.main([*common, "--set", "train.steps=2"])
    pretrain.main([*common, "--set", "train.steps=3", "--set", f"data.latents={cache}"])
    assert_same_training(pretrain_runs[0], tmp_path)


def test_diff_tuning_from_the_cache_equals_encoding(pretrain_runs, cache, tiny_vae, tmp_path):
    """Target rows from the cache, retention rows (pixels) encoded in the step: the same steps as encoding both."""
    replay = tmp_path / "retention"
    images = load_dataset(DATASET, "test", 8, 3).images[:24]  # real images as the retention set (RetentionSet)
    save_npz(replay / "samples.npz", images=images.permute(0, 2, 3, 1).numpy())
    write_json(replay / "manifest.json", {"kind": "source", "n": 24})
    common = ["--scale", "smoke", *DATA, "--pretrained", str(pretrain_runs[0] / "model"),
              "--method", "diff_tuning", "--retention", str(replay), "--set", f"model.vae={tiny_vae}",
              "--set", "train.steps=3", "--set", "train.log_every=1", "--no-progress"]
    finetune.main([*common, "--out", str(tmp_path / "encoded")])
    finetune.main([*common, "--set", f"data.latents={cache}", "--out", str(tmp_path / "cached")])
    assert "retention" in stats(tmp_path / "cached")[0]
    assert_same_training(tmp_path / "encoded", tmp_path / "cached")


def test_the_vae_fingerprint_covers_a_pipelines_vae_only(tiny_vae, tmp_path):
    """model.vae may name the DiT pipeline folder (paper scale): its transformer weights do not identify the VAE."""
    pipeline = tmp_path / "pipeline"
    shutil.copytree(tiny_vae, pipeline / "vae")
    (pipeline / "transformer").mkdir()
    safetensors.torch.save_file({"weight": torch.ones(2)}, pipeline / "transformer" / "model.safetensors")
    assert vae_folder(pipeline) == pipeline / "vae" and vae_folder(tiny_vae) == tiny_vae
    assert input_fingerprint(vae_folder(pipeline)) == input_fingerprint(tiny_vae)


@pytest.mark.parametrize("change, named", [(["--set", "data.dataset=textures"], "dataset"),
                                           (["--set", "data.resolution=16", "--set", "model.sample_size=8"],
                                            "resolution"),
                                           ("other_vae", "vae")])
def test_a_cache_of_other_images_or_another_vae_is_refused(cache, tiny_vae, other_tiny_vae, tmp_path, change, named):
    vae = other_tiny_vae if change == "other_vae" else tiny_vae
    flags = [] if change == "other_vae" else change
    expected = rf"latent cache {re.escape(str(cache))} .*{named}: cache .*re-make it with"
    with pytest.raises(ConfigError, match=expected) as error:
        pretrain.main([*LATENT, *flags, "--set", f"model.vae={vae}", "--set", f"data.latents={cache}",
                       "--out", str(tmp_path / "run"), "--no-progress"])
    assert "python -m tunebench.latents" in str(error.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_vae_and_controlnet_runs_are_refused(cache, tiny_vae, tmp_path):
    with pytest.raises(ConfigError, match="model.vae"):
        latents.main(["--scale", "smoke", *DATA, "--out", str(tmp_path / "x.safetensors")])
    with pytest.raises(ConfigError, match="data.latents.*needs model.vae"):
        pretrain.main([*LATENT, "--set", f"data.latents={cache}", "--out", str(tmp_path / "run")])
    with pytest.raises(ConfigError, match="data.latents.*not supported for ControlNet"):
        control_train.main(["--scale", "smoke", "--base", str(tmp_path), "--set", f"model.vae={tiny_vae}",
                            "--set", f"data.latents={cache}", "--out", str(tmp_path / "control")])
    with pytest.raises(ConfigError, match=rf"data.latents.*{re.escape(str(tmp_path))}/none.safetensors does not exist"):
        pretrain.main([*LATENT, "--set", f"model.vae={tiny_vae}", "--set",
                       f"data.latents={tmp_path / 'none.safetensors'}", "--out", str(tmp_path / "run")])


def test_help(capsys):
    with pytest.raises(SystemExit) as done:
        latents.main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--batch-size" in out and "--split" in out and "data.latents" in out
