"""The local feature net: the CLI trains and writes it; torch-fidelity runs it as a deterministic 128-d extractor."""

import hashlib
import json

import pytest
import torch
from torch_fidelity.utils import create_feature_extractor

from benchmarks import features
from benchmarks.feature_net import (
    FEATURE_LAYER,
    FIDELITY_NAME,
    FeatureNetError,
    load_feature_net,
    read_meta,
    save_feature_net,
    train_feature_net,
)
from tunebench.cli import run_cli
from tunebench.dataset_registry import DOWNSTREAM_DATASETS, SOURCE_DATASET
from tunebench.datasets import load_dataset


@pytest.fixture(scope="module")
def tiny_net_dir(tmp_path_factory):
    """A feature net trained by the real CLI on every mini dataset, tiny: 1 epoch, 20 images per class, 16 px."""
    out = tmp_path_factory.mktemp("features") / "local-16"
    features.main(["--out", str(out), "--epochs", "1", "--max-per-class", "20", "--resolution", "16"])
    return out


def images16(n: int = 12) -> torch.Tensor:
    """A few real uint8 16×16 RGB images."""
    return load_dataset("textures", "test", 16).images[:n]


#################################################################################
#                              Training CLI                                     #
#################################################################################


def test_cli_writes_weights_and_meta(tiny_net_dir):
    meta = json.loads((tiny_net_dir / "meta.json").read_text())
    weights = (tiny_net_dir / "weights.safetensors").read_bytes()
    assert meta["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert meta["extractor_id"] == "local-" + meta["weights_sha256"][:8]
    assert meta["cpu_capability"] == torch.backends.cpu.get_cpu_capability()  # the weights depend on the kernels
    assert meta["architecture"] == {"widths": [32, 64, 128], "feature_dim": 128, "num_classes": 53, "resolution": 16}
    assert [r["dataset"] for r in meta["datasets"]] == [SOURCE_DATASET, *DOWNSTREAM_DATASETS]
    firsts = [r["first_label"] for r in meta["datasets"]]
    sizes = [r["num_classes"] for r in meta["datasets"]]
    assert firsts == [sum(sizes[:i]) for i in range(len(sizes))] and sum(sizes) == 53  # consecutive, disjoint ranges
    assert meta["train_images"] <= 20 * 53 and meta["epochs"] == 1 and meta["seed"] == 0
    assert 0.0 <= meta["test_accuracy"] <= 1.0
    assert [entry["epoch"] for entry in meta["curve"]] == [1] and meta["curve"][-1]["test_accuracy"] == meta[
        "test_accuracy"]
    assert (tiny_net_dir / "curve.csv").read_text().splitlines() == [
        "epoch,mean_loss,test_accuracy", f"1,{meta['curve'][0]['mean_loss']},{meta['test_accuracy']}"]
    assert set(meta["test_accuracy_per_dataset"]) == {r["dataset"] for r in meta["datasets"]}
    assert meta["git_commit"] and not list(tiny_net_dir.parent.glob(".*tmp"))  # written atomically, nothing left over


def test_cli_help_and_bad_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        features.main(["--help"])
    assert exit_info.value.code == 0 and "tunebench-local" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        run_cli(features.main, ["--out", "unused", "--epochs", "0"])
    assert exit_info.value.code == 2 and "error: --epochs must be positive" in capsys.readouterr().err


def test_training_is_deterministic_and_records_a_test_curve_per_epoch():
    kwargs = dict(names=("textures", "lfw_faces"), resolution=16, epochs=3, max_per_class=16, widths=(4, 8, 8),
                  batch_size=8)
    (net_a, meta_a), (net_b, meta_b) = train_feature_net(**kwargs), train_feature_net(**kwargs)
    assert meta_a["architecture"]["num_classes"] == 5
    assert [entry["epoch"] for entry in meta_a["curve"]] == [1, 2, 3] and meta_a["curve"] == meta_b["curve"]
    assert meta_a["curve"][-1]["test_accuracy"] == meta_a["test_accuracy"]
    assert all(entry["mean_loss"] > 0 and 0 <= entry["test_accuracy"] <= 1 for entry in meta_a["curve"])
    assert not net_a.training  # returned in eval mode, as after the last test evaluation
    for (name, a), b in zip(net_a.state_dict().items(), net_b.state_dict().values()):
        assert torch.equal(a, b), name


#################################################################################
#                          torch-fidelity Extractor                             #
#################################################################################


def test_extractor_is_registered_and_deterministic(tiny_net_dir):
    extractor = create_feature_extractor(FIDELITY_NAME, [FEATURE_LAYER], cuda=False, verbose=False,
                                         feature_extractor_weights_path=str(tiny_net_dir))
    batch = images16()
    (first,), (second,) = extractor(batch), extractor(batch)
    assert first.shape == (12, 128) and first.dtype == torch.float32
    assert torch.equal(first, second)
    (alone,) = extractor(batch[:3])
    torch.testing.assert_close(alone, first[:3], rtol=1e-5, atol=1e-5)  # batch composition does not matter
    assert extractor.extractor_id == read_meta(tiny_net_dir)["extractor_id"]


def test_extractor_resizes_other_resolutions(tiny_net_dir):
    net, _ = load_feature_net(tiny_net_dir / "weights.safetensors")  # the weights file works as well as the folder
    batch = images16(4)
    bigger = torch.nn.functional.interpolate(batch.float(), size=(32, 32), mode="nearest").to(torch.uint8)
    with torch.no_grad():
        assert net.features(bigger).shape == (4, 128)
        # nearest ×2 then antialiased bilinear ÷2 is close to the identity, so the features barely move
        torch.testing.assert_close(net.features(bigger), net.features(batch), rtol=0.1, atol=0.2)


def test_swapped_weights_and_missing_folder_are_errors(tiny_net_dir, tmp_path):
    net, meta = load_feature_net(tiny_net_dir)
    other = tmp_path / "other"
    save_feature_net(net, meta, other)
    (other / "weights.safetensors").write_bytes((other / "weights.safetensors").read_bytes() + b" ")
    with pytest.raises(FeatureNetError, match="SHA-256"):
        read_meta(other)
    with pytest.raises(FeatureNetError, match="python -m benchmarks.features"):
        read_meta(tmp_path / "missing")
