"""FID/KID: sane numbers, equality with calculate_metrics, checked cached references, offline Inception skip."""

import json
import shutil
import urllib.request

import numpy as np
import pytest
import torch
import torch_fidelity.defaults
import torch_fidelity.feature_extractor_inceptionv3
from torch.utils.data import Dataset
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kernel_mmd, kid_features_to_metric
from torchvision.transforms.functional import gaussian_blur

from benchmarks import bench_features, fid, fid_defaults, fidelity
from benchmarks.feature_net import load_feature_net, save_feature_net, train_feature_net
from benchmarks.fidelity import FidError, compare, dataset_reference, extract_features, make_extractor, statistics
from benchmarks.results import read_results
from tunebench.cli import run_cli
from tunebench.datasets import load_dataset
from tunebench.io import save_png, write_json

RESOLUTION = 16


@pytest.fixture(scope="module")
def net_dir(tmp_path_factory):
    """A tiny feature net (8-16-32 channels, 128-d features) trained for a few steps on three 16 px mini datasets."""
    net, meta = train_feature_net(("textures", "microscopy", "gray_stills"), resolution=RESOLUTION, epochs=1,
                                  max_per_class=40, widths=(8, 16, 32), batch_size=16)
    out = tmp_path_factory.mktemp("features") / "tiny"
    save_feature_net(net, meta, out)
    return out


@pytest.fixture(scope="module")
def extractor(net_dir):
    """The torch-fidelity extractor over the tiny net."""
    return make_extractor("local", net_dir)[0]


@pytest.fixture(scope="module")
def images():
    """1000 real uint8 16×16 RGB images (texture and microscopy crops)."""
    return torch.cat([load_dataset(name, "test", RESOLUTION).images for name in ("textures", "microscopy")])


def reference_of(images, extractor):
    """In-memory reference statistics of `images`."""
    meta = {"extractor": extractor.extractor_id, "resolution": images.shape[-1]}
    return statistics(extract_features(images, extractor), meta)


def refuse_network(*args, **kwargs):
    """Stand-in for every download function: any call fails the test."""
    raise AssertionError("a download was attempted")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty TORCH_HOME, and torch.hub, torch-fidelity's Inception loader and urllib made to fail if called."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for module, name in ((torch.hub, "load_state_dict_from_url"), (torch.hub, "download_url_to_file"),
                         (torch_fidelity.feature_extractor_inceptionv3, "load_state_dict_from_url"),
                         (urllib.request, "urlopen")):
        monkeypatch.setattr(module, name, refuse_network)


#################################################################################
#                          FID and KID Behave                                   #
#################################################################################


def test_fid_is_zero_on_itself_and_grows_with_noise_and_blur(images, extractor):
    ref = reference_of(images, extractor)
    scale = np.trace(ref.sigma)
    assert abs(compare(images, ref, extractor)["fid"]) < 1e-3 * scale
    generator = torch.Generator().manual_seed(0)
    noisy = [(images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 255).to(torch.uint8)
             for sigma in (8.0, 24.0, 64.0)]
    blurred = [gaussian_blur(images, kernel_size=7, sigma=sigma) for sigma in (0.6, 1.2, 2.4)]
    for series in (noisy, blurred):
        fids = [fidelity.fid_from_statistics(reference_of(x, extractor), ref) for x in series]
        assert 0 < fids[0] < fids[1] < fids[2], fids


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(0)
    same = [fidelity.kid_from_features(rng.normal(size=(800, 128)).astype(np.float32),
                                       rng.normal(size=(1200, 128)).astype(np.float32), subsets=20)
            for _ in range(5)]
    shifted = fidelity.kid_from_features(rng.normal(size=(800, 128)).astype(np.float32),
                                         rng.normal(0.3, 1.0, size=(1200, 128)).astype(np.float32), subsets=20)
    assert all(k["kid_subset_size"] == 400 for k in same + [shifted])  # half the smaller set
    assert any(k["kid_mean"] < 0 for k in same)  # the unbiased estimator goes below zero
    assert max(abs(k["kid_mean"]) for k in same) * 20 < shifted["kid_mean"]
    assert shifted["kid_mean"] > 5 * shifted["kid_std"] and shifted["kid_low"] > 0
    assert all(k["kid_low"] < 0 < k["kid_high"] for k in same)


def test_kid_subsets_are_half_the_smaller_set_and_never_all_of_it():
    assert fidelity.kid_subset_size(100, 100) == 50 and fidelity.kid_subset_size(100, 5000) == 50
    assert fidelity.kid_subset_size(1000, 1000) == 500 and fidelity.kid_subset_size(2001, 3000) == 1000
    assert fidelity.kid_subset_size(5, 4) == 2
    with pytest.raises(FidError, match="at least 4 images on each side.*got 3 and 100"):
        fidelity.kid_subset_size(3, 100)


def test_kid_of_hand_computed_subsets_and_the_old_degenerate_subset_size():
    """{0, 0, 0, 0} against {0, 0, 1, 1} with the cubic kernel (x·y + 1)³ (d = 1): k is 1 unless both are 1 (8).
    A subset of 2 per side has KID (k(y1, y2) + 1) − 2 = 0, unless it drew both 1s (probability 1/6): then 7. The
    full-set KID is 1 + (2 + 16 + 8)/12 − 2 = 7/6, the mean over all subsets. With subsets of all 4 images (the old
    size, min(1000, n1, n2)) every subset gives 7/6: spread 0, no interval. Half-size subsets give 0s and 7s."""
    zeros, halves = np.zeros((4, 1)), np.array([[0.0], [0.0], [1.0], [1.0]])
    old = kid_features_to_metric(torch.tensor(zeros), torch.tensor(halves), kid_subsets=100, kid_subset_size=4,
                                 verbose=False)
    assert old[KEY_METRIC_KID_MEAN] == pytest.approx(7 / 6) and old[KEY_METRIC_KID_STD] == pytest.approx(0, abs=1e-12)
    kid = fidelity.kid_from_features(zeros, halves)
    assert kid["kid_subset_size"] == 2 and kid["kid_subsets"] == 100
    sevens = kid["kid_mean"] / 7 * 100  # the number of subsets that drew both 1s
    assert sevens == pytest.approx(round(sevens)) and 5 < sevens < 30
    share = round(sevens) / 100
    assert kid["kid_std"] == pytest.approx(7 * np.sqrt(share * (1 - share)))
    assert (kid["kid_low"], kid["kid_high"]) == pytest.approx((0.0, 7.0))


def test_kid_equals_torch_fidelity_at_its_subset_size():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(60, 16)).astype(np.float32), rng.normal(0.2, 1.0, size=(90, 16)).astype(np.float32)
    ours = fidelity.kid_from_features(a, b, subsets=30, seed=5)
    theirs = kid_features_to_metric(torch.tensor(a), torch.tensor(b), kid_subsets=30, kid_subset_size=30,
                                    rng_seed=5, verbose=False)
    assert ours["kid_mean"] == theirs[KEY_METRIC_KID_MEAN] and ours["kid_std"] == theirs[KEY_METRIC_KID_STD]


def test_kid_interval_spreads_as_much_as_the_full_set_estimate():
    """Half-sampling: over independent draws of two 100-image sets, the spread of the half-size subset KIDs within
    one draw matches the spread of the full-set KID across draws, and the interval covers the KID of two large sets
    about 95% of the time."""
    rng = np.random.default_rng(0)
    truth = kernel_mmd(rng.normal(size=(3000, 8)), rng.normal(0.5, 1.0, size=(3000, 8)))
    full, spread, covered = [], [], []
    for _ in range(40):
        a, b = rng.normal(size=(100, 8)), rng.normal(0.5, 1.0, size=(100, 8))
        full.append(kernel_mmd(a, b))
        kid = fidelity.kid_from_features(a, b)
        spread.append(kid["kid_std"])
        covered.append(kid["kid_low"] <= truth <= kid["kid_high"])
    assert 0.75 < np.mean(spread) / np.std(full) < 1.33
    assert np.mean(covered) >= 0.85


def test_fid_of_a_hand_computed_case():
    """FID of the square (±1, ±1) against it scaled by 2 and moved by (3, 4): means 25 apart, covariances
    diag(4/3, 4/3) and diag(16/3, 16/3) (N − 1), so FID = 25 + 2·(4/3 + 16/3 − 2·8/3) = 25 + 8/3."""
    square = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    ref_1, ref_2 = statistics(square, {}), statistics(square * 2 + torch.tensor([3.0, 4.0]), {})
    np.testing.assert_allclose(ref_1.sigma, np.diag([4 / 3, 4 / 3]), rtol=1e-12)
    assert fidelity.fid_from_statistics(ref_1, ref_2) == pytest.approx(25 + 8 / 3, rel=1e-9)
    assert fidelity.fid_from_statistics(ref_2, ref_1) == pytest.approx(25 + 8 / 3, rel=1e-9)


class TensorImages(Dataset):
    """A uint8 N×3×H×W tensor as the Dataset of C×H×W tensors that torch-fidelity reads."""

    def __init__(self, tensor):
        """Wrap the tensor."""
        self.tensor = tensor

    def __len__(self):
        """Number of images."""
        return len(self.tensor)

    def __getitem__(self, index):
        """One image."""
        return self.tensor[index]


def test_cached_reference_path_equals_calculate_metrics(images, extractor):
    generated, real = images[::2], gaussian_blur(images[1::2], kernel_size=5, sigma=1.0)
    direct = fidelity.fidelity_metrics(input1=TensorImages(generated), input2=TensorImages(real), fid=True, kid=True,
                                  kid_subset_size=fidelity.kid_subset_size(len(generated), len(real)),
                                  **extractor.options())
    ours = compare(generated, reference_of(real, extractor), extractor)
    assert ours["fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-3)
    assert ours["kid_mean"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-3, abs=1e-6)


def test_unknown_torch_fidelity_option_is_rejected():
    with pytest.raises(FidError, match="'kid_subset_sise'.*did you mean 'kid_subset_size'"):
        fidelity.fidelity_metrics(input1="unused", kid=True, kid_subset_sise=10)


def test_the_light_flag_defaults_are_torch_fidelitys():
    assert fid_defaults.BATCH_SIZE == torch_fidelity.defaults.DEFAULTS["batch_size"]
    assert fid_defaults.INCEPTION_FILE in torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3


#################################################################################
#                            Cached References                                  #
#################################################################################


def test_reference_is_computed_once_and_reused(extractor, tmp_path, monkeypatch):
    calls = []
    real_extract = fidelity.extract_features
    monkeypatch.setattr(fidelity, "extract_features", lambda *a, **k: calls.append(1) or real_extract(*a, **k))
    first, path = dataset_reference("textures", "test", extractor, RESOLUTION, tmp_path)
    second, again = dataset_reference("textures", "test", extractor, RESOLUTION, tmp_path)
    assert len(calls) == 1 and path == again
    assert path.name == f"textures-test-{extractor.extractor_id}-{RESOLUTION}px.npz"
    with np.load(path) as data:
        assert data["mu"].dtype == data["sigma"].dtype == np.float64 and data["features"].shape == (600, 128)
        assert {"dataset", "split", "extractor", "resolution", "n_images", "images_sha256"} <= set(data.files)
    np.testing.assert_array_equal(first.sigma, second.sigma)


def test_mismatched_reference_is_an_error(extractor, net_dir, images, tmp_path, monkeypatch):
    _, path = dataset_reference("textures", "test", extractor, RESOLUTION, tmp_path)
    shutil.copy(path, fidelity.reference_path(tmp_path, "textures", "test", extractor.extractor_id, 24))
    with pytest.raises(FidError, match=r"resolution: file has 16, requested 24.*delete the file"):
        dataset_reference("textures", "test", extractor, 24, tmp_path)

    net, meta = load_feature_net(net_dir)
    with torch.no_grad():
        net.head.bias.add_(1.0)  # other weights, so another hash and extractor id
    save_feature_net(net, meta, tmp_path / "other")
    other = make_extractor("local", tmp_path / "other")[0]
    assert other.extractor_id != extractor.extractor_id
    shutil.copy(path, fidelity.reference_path(tmp_path, "textures", "test", other.extractor_id, RESOLUTION))
    with pytest.raises(FidError, match=f"extractor: file has '{extractor.extractor_id}'"):
        dataset_reference("textures", "test", other, RESOLUTION, tmp_path)
    with pytest.raises(FidError, match=f"computed with {extractor.extractor_id}"):
        compare(images, fidelity.load_reference(path), other)

    changed = load_dataset("textures", "test", RESOLUTION)
    changed = type(changed)(changed.images.flip(-1), changed.labels, changed.spec, changed.split)
    monkeypatch.setattr(fidelity, "load_dataset", lambda *args, **kwargs: changed)
    with pytest.raises(FidError, match="images_sha256"):
        dataset_reference("textures", "test", extractor, RESOLUTION, tmp_path)


def test_paper_folder_reference_is_streamed_and_keyed_by_its_files(extractor, tmp_path):
    # artbench10's layout: ROOT/train/CLASS/*.png with its 10 classes; 3 random 20 px images per class.
    generator = np.random.default_rng(0)
    for label in range(10):
        for index in range(3):
            save_png(tmp_path / "root" / "train" / f"class{label}" / f"{index}.png",
                     generator.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    ref, path = dataset_reference("artbench10", "train", extractor, RESOLUTION, tmp_path / "refs", batch_size=7,
                                  root=tmp_path / "root")
    folder = load_dataset("artbench10", "train", RESOLUTION, root=tmp_path / "root")
    in_memory = torch.stack([folder[i][0] for i in range(len(folder))])
    np.testing.assert_allclose(ref.features, extract_features(in_memory, extractor).numpy(), rtol=1e-5, atol=1e-6)
    assert ref.meta["n_images"] == 30 and len(ref.meta["files_sha256"]) == 64

    save_png(tmp_path / "root" / "train" / "class0" / "3.png", np.zeros((20, 20, 3), dtype=np.uint8))
    with pytest.raises(FidError, match="files_sha256"):
        dataset_reference("artbench10", "train", extractor, RESOLUTION, tmp_path / "refs", root=tmp_path / "root")


#################################################################################
#                    Inputs, Offline Inception, Command Line                    #
#################################################################################


def test_inception_without_weights_is_skipped_without_network(offline, tmp_path, capsys):
    weights, reason = fidelity.find_inception_weights()
    assert weights is None and "--inception-weights" in reason
    assert f"$TORCH_HOME/hub/checkpoints/{fidelity.INCEPTION_FILE}" in reason and str(tmp_path) not in reason
    assert make_extractor("inception") == (None, reason)
    with pytest.raises(SystemExit):
        run_cli(fid.main, ["ref", "--dataset", "textures", "--extractor", "inception", "--out-dir", str(tmp_path)])
    assert "cannot compute an Inception reference" in capsys.readouterr().err
    with pytest.raises(FidError, match="does not exist"):
        fidelity.find_inception_weights(tmp_path / "typo.pth")
    not_weights = tmp_path / "model.pth"
    torch.save({"config": {"layers": 3}}, not_weights)
    with pytest.raises(FidError, match="state dict of tensors"):
        fidelity.inception_extractor(not_weights)


def test_calc_cli_writes_rows_with_provenance_and_skipped_inception(offline, extractor, net_dir, tmp_path, capsys):
    run_cli(fid.main, ["ref", "--dataset", "textures", "--split", "test", "--features", str(net_dir),
                       "--resolution", str(RESOLUTION), "--out-dir", str(tmp_path / "refs")])
    ref = fidelity.reference_path(tmp_path / "refs", "textures", "test", extractor.extractor_id, RESOLUTION)
    samples = tmp_path / "samples"
    for seed, image in enumerate(load_dataset("textures", "train", RESOLUTION).images[:40]):
        save_png(samples / f"{seed:06d}.png", image.permute(1, 2, 0).numpy())
    write_json(samples / "protocol.json", {"protocol": {"model": "runs/x/model", "model_scale": "smoke",
                                                        "sample": {"sampler": "ddim", "steps": 10,
                                                                   "guidance_scale": 1.5}, "n_samples": 40}})
    csv, out_json = tmp_path / "results.csv", tmp_path / "scores.json"
    run_cli(fid.main, ["calc", "--images", str(samples), "--ref", str(ref), "--inception", "--results", str(csv),
                       "--experiment", "test", "--method", "full_ft", "--seed", "7", "--json", str(out_json)])
    rows = read_results(csv).set_index("metric")
    assert set(rows.index) == {"fid_local", "kid_local", "kid_local_std",
                               "fid_inception", "kid_inception", "kid_inception_std"}
    local = rows.loc["fid_local"]
    assert local["value"] > 0 and local["extractor"] == extractor.extractor_id and local["reference"] == ref.name
    assert (local["dataset"], local["seed"], local["n_samples"]) == ("textures", 7, 40)
    assert (local["model"], local["scale"], local["sampler"], local["steps"], local["guidance"]) == \
        ("runs/x/model", "smoke", "ddim", 10, 1.5)
    assert "not comparable to Inception" in local["note"] and "subsets of 20" in local["note"]
    # The FID row's jackknife interval over the 40 images (fid_defaults.FID_JACKKNIFE_GROUPS asks for 50 groups for
    # local features; 40 images allow 20 of 2), centred on the value; the KID row's from its subsets.
    assert local["ci_low"] < local["value"] < local["ci_high"] and "(20 groups" in local["note"]
    kid = rows.loc["kid_local"]
    assert kid["ci_low"] < kid["value"] < kid["ci_high"] and "95% interval: 2.5–97.5th percentiles" in kid["note"]
    assert rows.loc[["kid_local_std"], ["ci_low", "ci_high"]].isna().all().all()
    skipped = rows.loc["fid_inception"]
    assert np.isnan(skipped["value"]) and "--inception-weights" in skipped["note"]
    assert json.loads(out_json.read_text())["scores"][0]["kind"] == "inception"
    assert "fid_local\t" in capsys.readouterr().out
    again, without = tmp_path / "again.csv", tmp_path / "without.csv"
    calc = ["calc", "--images", str(samples), "--ref", str(ref), "--experiment", "test", "--method", "full_ft"]
    run_cli(fid.main, [*calc, "--results", str(again)])
    assert read_results(again).set_index("metric").loc["fid_local", ["ci_low", "ci_high"]].tolist() == \
        local[["ci_low", "ci_high"]].tolist()
    run_cli(fid.main, [*calc, "--results", str(without), "--jackknife-groups", "0"])
    plain = read_results(without).set_index("metric").loc["fid_local"]
    assert plain["value"] == local["value"] and np.isnan(plain["ci_low"]) and "jackknife" not in plain["note"]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(fid.main, [*calc, "--jackknife-groups", "-1"])
    assert exit_info.value.code == 2 and "--jackknife-groups -1" in capsys.readouterr().err

    (samples / "000039.png").unlink()  # protocol.json asked for 40
    with pytest.raises(SystemExit) as exit_info:
        run_cli(fid.main, ["calc", "--images", str(samples), "--ref", str(ref)])
    assert exit_info.value.code == 2 and "found 39 images" in capsys.readouterr().err


def test_npz_and_tensor_inputs(tmp_path):
    grey = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 1), dtype=np.uint8)
    np.savez(tmp_path / "samples.npz", images=grey)
    images, protocol = fidelity.read_images(tmp_path / "samples.npz")
    assert images.shape == (5, 3, 8, 8) and protocol == {} and torch.equal(images[:, 0], images[:, 2])
    with pytest.raises(FidError, match="found 5 images.*at least 6"):
        fidelity.take_images(images, "samples.npz", None, 6)
    assert len(fidelity.take_images(images, "samples.npz", 4, None)) == 4
    with pytest.raises(FidError, match="uint8"):
        fidelity.as_rgb_uint8(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("main, argv", [(fid.main, ["--help"]), (fid.main, ["ref", "--help"]),
                                        (fid.main, ["calc", "--help"]), (bench_features.main, ["--help"])])
def test_help(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_bench_writes_one_row_per_measurement(net_dir, tmp_path):
    out = tmp_path / "bench.csv"
    bench_features.main(["--features", str(net_dir), "--n-images", "20", "--out", str(out),
                         "--ref-dir", str(tmp_path / "refs")])
    lines = out.read_text().splitlines()
    assert lines[0].split(",") == list(bench_features.BENCH_COLUMNS)
    assert [line.split(",")[0] for line in lines[1:]] == ["features_tensor", "features_png_folder",
                                                         "fid_kid_tensor_vs_cached_ref",
                                                         "fid_kid_png_folder_vs_cached_ref"]
