"""The Diff-Tuning CLIs in-process on a smoke model: retention set, fine-tuning with exact resume, errors, export."""

import json
import shutil

import numpy as np
import pytest
import safetensors.torch
import torch

from difftune import finetune, param_rows, retention
from difftune.retention_set import RetentionSet
from tunebench.checkpoint import CheckpointError
from tunebench.config import ConfigError, settings_file
from tunebench.models import load_dit


@pytest.fixture(scope="module")
def retention_set(pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("retention")
    retention.main(["--scale", "smoke", "--model", str(pretrained), "--out", str(out), "--n", "12",
                    "--no-progress", "--set", "sample.steps=3"])
    return out


def test_retention_set_manifest_and_images(retention_set):
    manifest = json.loads((retention_set / "manifest.json").read_text())
    assert manifest["kind"] == "generated" and manifest["n"] == 12
    assert manifest["protocol"]["labels"] == "uniform" and manifest["protocol"]["sample"]["steps"] == 3
    data = RetentionSet(retention_set, resolution=16, channels=3)
    assert data.images.shape == (12, 3, 16, 16) and data.images.dtype == torch.uint8
    with pytest.raises(ConfigError, match="data.resolution"):
        RetentionSet(retention_set, resolution=32)


def test_retention_size_replays_the_sets_first_images(retention_set):
    whole = RetentionSet(retention_set, resolution=16, channels=3)
    prefix = RetentionSet(retention_set, resolution=16, channels=3, size=5)
    assert torch.equal(prefix.images, whole.images[:5]) and len(prefix) == 5
    with pytest.raises(ConfigError, match="retention_size=13 but retention set .* holds 12"):
        RetentionSet(retention_set, size=13)


def test_real_source_retention_variant(tmp_path):
    retention.main(["--kind", "source", "--scale", "smoke", "--out", str(tmp_path), "--n", "7"])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["kind"] == "source" and manifest["dataset"] == "source"
    assert np.load(tmp_path / "samples.npz")["images"].shape == (7, 16, 16, 3)


def test_retention_size_defaults_to_the_scale_files_retention_n(tmp_path, monkeypatch):
    smoke = settings_file("smoke").read_text()
    assert "  retention_n: 16\n" in smoke
    config = tmp_path / "config"
    config.mkdir()
    (config / "smoke.yaml").write_text(smoke.replace("  retention_n: 16\n", "  retention_n: 5\n"))
    monkeypatch.setattr("tunebench.config.SETTINGS_DIR", config)
    retention.main(["--kind", "source", "--scale", "smoke", "--out", str(tmp_path / "set")])
    assert np.load(tmp_path / "set/samples.npz")["images"].shape[0] == 5
    (config / "smoke.yaml").write_text(smoke.replace("  retention_n: 16\n", "  retention_n: many\n"))
    with pytest.raises(ConfigError, match="smoke.yaml: 'difftune.retention_n' is 'many'"):
        retention.main(["--kind", "source", "--scale", "smoke", "--out", str(tmp_path / "other")])


def test_retention_sampler_comes_from_the_scale_files_retention_section(tmp_path, monkeypatch, pretrained):
    smoke = settings_file("smoke").read_text()
    assert "  retention: {}\n" in smoke
    config = tmp_path / "config"
    config.mkdir()
    for scale in ("mini", "paper"):
        (config / f"{scale}.yaml").write_text(settings_file(scale).read_text())
    (config / "smoke.yaml").write_text(smoke.replace("  retention: {}\n",
                                                     "  retention: {sample: {sampler: ddim, steps: 2}}\n"))
    monkeypatch.setattr("tunebench.config.SETTINGS_DIR", config)
    retention.main(["--scale", "smoke", "--model", str(pretrained), "--out", str(tmp_path / "set"), "--n", "2",
                    "--no-progress"])
    sample = json.loads((tmp_path / "set/manifest.json").read_text())["protocol"]["sample"]
    assert (sample["sampler"], sample["steps"]) == ("ddim", 2)


def _finetune(out, pretrained, retention_set, *extra):
    finetune.main(["--scale", "smoke", "--pretrained", str(pretrained), "--retention", str(retention_set),
                   "--out", str(out), "--no-progress", *extra])


@pytest.mark.parametrize("peft", ["none", "difffit"])
def test_finetune_resumes_exactly_and_exports_a_plain_dit(tmp_path, pretrained, retention_set, peft):
    flags = ["--dataset", "textures", "--method", "diff_tuning", "--peft", peft]
    _finetune(tmp_path / "straight", pretrained, retention_set, *flags)
    _finetune(tmp_path / "resumed", pretrained, retention_set, *flags, "--set", "train.steps=4")
    _finetune(tmp_path / "resumed", pretrained, retention_set, *flags)  # continues from checkpoint 4 to 8
    for name in ("model.safetensors", "ema.safetensors"):
        a = safetensors.torch.load_file(tmp_path / "straight/checkpoints/checkpoint-0000008" / name)
        b = safetensors.torch.load_file(tmp_path / "resumed/checkpoints/checkpoint-0000008" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    summary = json.loads((tmp_path / "straight/summary.json").read_text())
    assert summary["class_names"] == ["brick", "grass", "gravel"] and summary["retention_per_batch"] == 2
    if peft == "difffit":
        assert summary["trainable_parameters"] < summary["parameters"]
    resumed = json.loads((tmp_path / "resumed/summary.json").read_text())
    assert resumed["weights_sha256"] == summary["weights_sha256"]  # the same exported model, byte for byte
    model = load_dit(tmp_path / "straight/model")
    assert not any("gamma" in n for n, _ in model.named_parameters())
    stats = [json.loads(line) for line in (tmp_path / "straight/stats.jsonl").read_text().splitlines()]
    assert [r["step"] for r in stats] == [2, 4, 6, 8] and all("retention" in r for r in stats)


def test_a_longer_run_continues_a_shorter_one_exactly(tmp_path, pretrained, retention_set):
    flags = ["--dataset", "textures", "--method", "diff_tuning"]
    _finetune(tmp_path / "straight", pretrained, retention_set, *flags)  # the smoke length, 8 steps
    _finetune(tmp_path / "short", pretrained, retention_set, *flags, "--set", "train.steps=4")
    start = tmp_path / "short/checkpoints/checkpoint-0000004"
    _finetune(tmp_path / "long", pretrained, retention_set, *flags, "--start-from", str(start))
    straight = json.loads((tmp_path / "straight/summary.json").read_text())
    assert json.loads((tmp_path / "long/summary.json").read_text())["weights_sha256"] == straight["weights_sha256"]
    stats = [json.loads(line)["step"] for line in (tmp_path / "long/stats.jsonl").read_text().splitlines()]
    assert stats == [6, 8]  # it trained steps 5–8 only
    # Its own checkpoints now win over --start-from: a rerun resumes at 8 and exports the same model.
    _finetune(tmp_path / "long", pretrained, retention_set, *flags, "--start-from", str(start))
    assert json.loads((tmp_path / "long/summary.json").read_text())["weights_sha256"] == straight["weights_sha256"]
    with pytest.raises(CheckpointError, match="different config"):  # another seed is another run
        _finetune(tmp_path / "other", pretrained, retention_set, *flags, "--set", "train.seed=3",
                  "--start-from", str(start))


def test_finetune_errors_name_what_to_pass(tmp_path, pretrained):
    with pytest.raises(ConfigError, match="--retention"):
        finetune.main(["--scale", "smoke", "--pretrained", str(pretrained), "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="--pretrained"):
        finetune.main(["--scale", "smoke", "--method", "full_ft", "--out", str(tmp_path)])
    with pytest.raises(ConfigError, match="difftune.tau"):
        finetune.main(["--scale", "smoke", "--pretrained", str(pretrained), "--method", "full_ft",
                       "--out", str(tmp_path), "--set", "difftune.tau=-1"])


def test_resume_refuses_checkpoints_trained_from_other_input_files(tmp_path, pretrained, retention_set):
    retention_copy = tmp_path / "retention"
    shutil.copytree(retention_set, retention_copy)
    _finetune(tmp_path / "run", pretrained, retention_copy, "--set", "train.steps=4")
    state = json.loads((tmp_path / "run/checkpoints/checkpoint-0000004/state.json").read_text())
    assert set(state["inputs"]) == {"pretrained", "retention"}

    # The same folder with other contents (a set sampled from other seeds), as after a DAG rerun of retention_set.
    retention.main(["--scale", "smoke", "--model", str(pretrained), "--out", str(tmp_path / "other"), "--n", "12",
                    "--seed", "100", "--no-progress", "--set", "sample.steps=3"])
    shutil.copy(tmp_path / "other/samples.npz", retention_copy / "samples.npz")
    with pytest.raises(CheckpointError, match=r"other input files \(retention: .*delete .*run"):
        _finetune(tmp_path / "run", pretrained, retention_copy)

    shutil.copy(retention_set / "samples.npz", retention_copy / "samples.npz")
    _finetune(tmp_path / "run", pretrained, retention_copy)  # the original inputs resume
    assert (tmp_path / "run/checkpoints/checkpoint-0000008").is_dir()


def test_param_rows_count_what_the_run_trained(tmp_path, pretrained, retention_set):
    out = tmp_path / "lora"
    _finetune(out, pretrained, retention_set, "--peft", "lora", "--set", "difftune.retention_size=8")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["retention_images"] == 8
    rows = {row["metric"]: row for row in param_rows.param_rows(out, "difftune_peft", "diff_tuning+lora")}
    assert rows["trainable_params"]["value"] == summary["trainable_parameters"] < summary["parameters"]
    assert rows["trainable_percent"]["value"] == pytest.approx(
        100 * summary["trainable_parameters"] / summary["parameters"])
    assert rows["trainable_params"]["dataset"] == "mnist5k" and rows["trainable_params"]["scale"] == "smoke"
    with pytest.raises(ConfigError, match="summary.json is missing"):
        param_rows.param_rows(tmp_path, "difftune_peft", "x")


def test_exported_model_card_says_what_the_model_is(tmp_path, pretrained):
    finetune.main(["--scale", "smoke", "--pretrained", str(pretrained), "--dataset", "textures", "--method", "full_ft",
                   "--set", "train.steps=3", "--set", "train.seed=5", "--set", "train.log_every=1", "--out",
                   str(tmp_path), "--no-progress"])
    card = (tmp_path / "model/README.md").read_text()
    last = json.loads((tmp_path / "stats.jsonl").read_text().splitlines()[-1])
    assert card.startswith("# DiTTransformer2DModel exported by tunebench")
    assert f"| base model | `{pretrained}` |" in card
    assert "| data | `textures` train split, " in card and "fine-tuning with `full_ft` (PEFT `none`" in card
    assert "| steps | 3 |" in card and "| seed | 5 |" in card and "| scale | `smoke` |" in card
    assert f"training loss at step 3 (the last logged, `stats.jsonl`): loss {last['loss']:.4g}" in card
    assert "ema; EMA of 3 updates at decay" in card
    assert "`tunebench.models.load_dit(folder)`" in card and "eps 1e-5" in card and "divided by 127" in card
