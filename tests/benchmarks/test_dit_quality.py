"""The DiT quality curve: one row per kept checkpoint, resumable without recomputing, eps_mse a function of the weights,
samples a function of their seeds, and errors that name the file."""

import csv
import json
import re
import shutil

import pytest
import torch

from benchmarks import dit_measure, dit_quality
from benchmarks.dit_measure import NUMBER_COLUMNS, Protocol, draw_samples
from benchmarks.dit_sources import ModelSource
from benchmarks.feature_net import FeatureNetError, save_feature_net, train_feature_net
from tests.conftest import kept_log_handlers
from tunebench import pretrain
from tunebench.config import ConfigError
from tunebench.models import load_dit, tensors_sha256

RUN_FLAGS = ["--scale", "smoke", "--no-progress", "--set", "data.dataset=digits", "--set", "train.steps=6",
             "--set", "train.checkpoint_every=2"]  # checkpoints after steps 2, 4 and 6; the smoke scale keeps two
PROTOCOL_FLAGS = ["--dataset", "digits", "--n", "8", "--steps", "4", "--denoise-images", "24", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real smoke pre-training run on digits (10 classes, quick to build): 6 steps, checkpoints 4 and 6 kept."""
    out = tmp_path_factory.mktemp("dit") / "run"
    with kept_log_handlers():
        pretrain.main([*RUN_FLAGS, "--out", str(out)])
    return out


@pytest.fixture(scope="module")
def features_dir(tmp_path_factory):
    """A tiny feature net (4-8-8 channels, 16-d features) trained for one epoch on 10 digits per class."""
    net, meta = train_feature_net(("digits",), resolution=16, epochs=1, max_per_class=10, widths=(4, 8, 8),
                                  feature_dim=16, batch_size=8)
    out = tmp_path_factory.mktemp("features") / "tiny"
    save_feature_net(net, meta, out)
    return out


def quality_args(features_dir, out, *weights: str) -> list[str]:
    """The CLI's flags for `weights` (--run DIR or --model DIR), writing OUT/curve.csv and OUT/quality.json."""
    return [*weights, "--features", str(features_dir), *PROTOCOL_FLAGS, "--out-csv", str(out / "curve.csv"),
            "--out-json", str(out / "quality.json")]


@pytest.fixture(scope="module")
def curve_dir(run_dir, features_dir, tmp_path_factory):
    """The CLI's curve, JSON and figure of the run's kept checkpoints."""
    out = tmp_path_factory.mktemp("quality")
    with kept_log_handlers():
        dit_quality.main([*quality_args(features_dir, out, "--run", str(run_dir)), "--figure", str(out / "curve.png")])
    return out


def read_rows(path) -> list[dict]:
    """The curve's rows with their numbers parsed."""
    with open(path, newline="") as handle:
        return [{key: NUMBER_COLUMNS.get(key, str)(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def test_one_row_per_kept_checkpoint_and_the_json_is_the_last_row(curve_dir, run_dir, features_dir):
    rows = read_rows(curve_dir / "curve.csv")
    assert [row["step"] for row in rows] == [4, 6]
    extractor = json.loads((features_dir / "meta.json").read_text())["extractor_id"]
    for row in rows:
        assert {key: row[key] for key in ("n", "sampler", "steps", "guidance", "labels", "dataset", "split", "seeds",
                                          "denoise_images")} == {
            "n": 8, "sampler": "ddim", "steps": 4, "guidance": 1.5, "labels": "cycle", "dataset": "digits",
            "split": "test", "seeds": "0-7", "denoise_images": 24}
        assert row["extractor"] == extractor
        assert row["eps_mse"] > 0 and row["kid_local_std"] >= 0
    assert rows[0]["eps_mse"] != rows[1]["eps_mse"]  # other weights, other denoising error
    # The SHA-256 of the weights' tensors: step 6's EMA weights are those the run exported, in another file format.
    assert rows[0]["weights_sha256"] != rows[1]["weights_sha256"]
    assert rows[1]["weights_sha256"] == tensors_sha256(load_dit(run_dir / "model"))
    best = min(rows, key=lambda row: row["fid_local"])
    summary = json.loads((curve_dir / "quality.json").read_text())
    assert summary == {**rows[-1], "best_step": best["step"], "best_fid_local": best["fid_local"]}
    assert (curve_dir / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_a_rerun_measures_nothing_and_a_lost_row_is_measured_again_identically(
        curve_dir, run_dir, features_dir, tmp_path, monkeypatch, capsys, restore_logging):
    shutil.copy(curve_dir / "curve.csv", tmp_path / "curve.csv")
    before = (tmp_path / "curve.csv").read_text()
    args = quality_args(features_dir, tmp_path, "--run", str(run_dir))
    with monkeypatch.context() as patched:
        patched.setattr(dit_measure, "measure", lambda *a, **k: pytest.fail("a measured step was measured again"))
        dit_quality.main(args)
    assert (tmp_path / "curve.csv").read_text() == before
    log = capsys.readouterr().err
    assert f"step 4: already in {tmp_path / 'curve.csv'}, skipped" in log and "step 6: already in" in log
    assert "steps [2] were deleted (train.checkpoints_keep) before they were measured" in log
    # A job killed while measuring step 6 left only step 4's row: the next one measures step 6 alone, to the bit.
    (tmp_path / "curve.csv").write_text("".join(before.splitlines(keepends=True)[:2]))
    dit_quality.main(args)
    assert (tmp_path / "curve.csv").read_text() == before
    assert "step 4: already in" in capsys.readouterr().err


def test_identical_weights_give_identical_figures(curve_dir, run_dir, features_dir, tmp_path, restore_logging):
    dit_quality.main(quality_args(features_dir, tmp_path, "--model", str(run_dir / "model")))
    (exported,) = read_rows(tmp_path / "curve.csv")
    step_6 = read_rows(curve_dir / "curve.csv")[-1]
    assert exported["step"] == 6  # the exported model is the EMA of the last step, stored in another file format
    for key in (*dit_measure.MEASURES, "weights_sha256"):
        assert exported[key] == step_6[key], key


def test_samples_depend_only_on_their_seed(run_dir):
    source = ModelSource(run_dir / "model")
    model = source.checkpoints[0].load()

    def protocol(n):
        """A cycle-label protocol of n samples."""
        return Protocol(n, 3, 1.5, "cycle", "digits", "test", "local-unused", 4)

    eight, three = (draw_samples(model, source.run, protocol(n), "cpu") for n in (8, 3))
    assert eight.shape == (8, 3, 16, 16) and eight.dtype == torch.uint8
    assert torch.equal(eight[:3], three)


def test_errors_name_the_file_and_the_fix(curve_dir, run_dir, features_dir, tmp_path, restore_logging):
    empty, missing, curve = (re.escape(str(tmp_path / name)) for name in ("empty", "missing", "curve.csv"))
    with pytest.raises(ConfigError, match=f"{empty}/checkpoints holds no complete checkpoint.*pretrain --out"):
        dit_quality.main(quality_args(features_dir, tmp_path, "--run", str(tmp_path / "empty")))
    with pytest.raises(FeatureNetError, match=f"{missing} must hold .*python -m benchmarks.features"):
        dit_quality.main(quality_args(tmp_path / "missing", tmp_path, "--run", str(run_dir)))
    with pytest.raises(SystemExit) as exit_info:
        dit_quality.main(quality_args(features_dir, tmp_path, "--run", str(run_dir), "--dataset", "imagenet"))
    assert exit_info.value.code == 2
    shutil.copy(curve_dir / "curve.csv", tmp_path / "curve.csv")
    with pytest.raises(ConfigError, match=rf"{curve} holds step 4 measured with another protocol \(n 8, now 9"):
        dit_quality.main([*quality_args(features_dir, tmp_path, "--run", str(run_dir)), "--n", "9"])
    text = (tmp_path / "curve.csv").read_text()
    sha = read_rows(tmp_path / "curve.csv")[1]["weights_sha256"]
    (tmp_path / "curve.csv").write_text(text.replace(sha, "0" * 64))
    checkpoint = re.escape(str(run_dir / "checkpoints" / "checkpoint-0000006"))
    with pytest.raises(ConfigError, match=f"{curve} has step 6 measured on weights 00000000.*{checkpoint} holds"):
        dit_quality.main(quality_args(features_dir, tmp_path, "--run", str(run_dir)))
