"""PSNR/SSIM conventions, and LPIPS offline: skipped without AlexNet weights, exact with a local state dict."""

import urllib.request

import lpips
import numpy as np
import pytest
import torch
import torchvision

from benchmarks import image_scores, lpips_metric
from benchmarks.image_metrics import ImageRangeError, MetricSummary, psnr, ssim
from benchmarks.intervals import bootstrap_mean_interval
from benchmarks.lpips_metric import ALEXNET_FILE, load_lpips, lpips_distance, lpips_per_image
from benchmarks.reconstruction_rows import mean_row
from benchmarks.results import read_results
from tunebench.config import ConfigError


def images(seed: int, shape=(3, 3, 32, 32)) -> np.ndarray:
    """Seeded float images in [0, 1]."""
    return np.random.default_rng(seed).random(shape)


def refuse_network(*args, **kwargs):
    """Stand-in for every download function: any call fails the test."""
    raise AssertionError("a download was attempted")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty TORCH_HOME and every download path of torch, torchvision and urllib made to fail."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse_network)
    monkeypatch.setattr(urllib.request, "urlopen", refuse_network)
    return tmp_path / "torch_home" / "hub" / "checkpoints"


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A torchvision AlexNet state dict (random, 244 MB) saved like alexnet-owt-7be5be79.pth; deleted afterwards."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("alexnet") / ALEXNET_FILE
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), path)
    yield path
    path.unlink()


#################################################################################
#                                PSNR and SSIM                                  #
#################################################################################


def test_psnr_known_value_and_uint8():
    target = np.full((2, 3, 16, 16), 0.5)
    assert psnr(target + 0.1, target).per_image == pytest.approx([20.0, 20.0])  # MSE 0.01 → 20 dB
    as_uint8 = (target * 255).round().astype(np.uint8)
    shifted = as_uint8 + np.uint8(51)  # 51 / 255 = 0.2 → 13.98 dB
    assert psnr(torch.from_numpy(shifted), as_uint8).mean == pytest.approx(10 * np.log10(1 / 0.04))


def test_psnr_identical_pairs_are_inf_and_left_out_of_the_mean():
    pred, target = images(0), images(1)
    pred[1] = target[1]
    result = psnr(pred, target)
    assert np.isinf(result.per_image[1]) and result.n_identical == 1
    assert result.mean == pytest.approx(np.mean(result.per_image[[0, 2]]))
    everything_identical = psnr(target, target)
    assert everything_identical.mean == float("inf") and everything_identical.n_identical == 3


SSIM_C1, SSIM_C2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2  # Wang et al. 2004: (K1·L)², (K2·L)², K = 0.01, 0.03, L = 1


def test_ssim_of_constant_images_is_the_hand_computed_luminance_term():
    """Constant channels have zero variance and covariance, so SSIM = (2ab + C1) / (a² + b² + C1) per channel, averaged
    over channels and then over images; identical images give exactly 1."""
    pred, target = np.ones((2, 3, 16, 16)), np.ones((2, 3, 16, 16))
    for channel, (a, b) in enumerate([(0.5, 0.25), (1.0, 0.0), (0.2, 0.2)]):
        pred[0, channel], target[0, channel] = a, b
    pred[1], target[1] = 0.3, 0.3
    by_hand = np.mean([(2 * 0.5 * 0.25 + SSIM_C1) / (0.5 ** 2 + 0.25 ** 2 + SSIM_C1),  # 0.2501 / 0.3126
                       SSIM_C1 / (1.0 + SSIM_C1),  # black against white: C1 / (1 + C1) with data_range 1
                       1.0])
    result = ssim(pred, target)
    assert result.per_image == pytest.approx([by_hand, 1.0], rel=1e-12)
    assert result.mean == pytest.approx((by_hand + 1.0) / 2, rel=1e-12)
    assert ssim(images(1), images(1)).per_image == pytest.approx([1.0] * 3, rel=1e-12)  # σx = σy = σxy: exactly 1


def test_ssim_of_a_grey_ramp_and_its_negative_uses_the_gaussian_window_and_population_covariance():
    """x = i / 15 down the rows of a 16×16 grey image against 1 − x: inside the valid region (5 rows and columns
    cropped per side) an 11-tap σ = 1.5 window gives local mean μ = i / 15 and variance (1/15)²·v, v the window's
    second moment, with covariance −(1/15)²·v (population, as Wang et al.). So SSIM = cs · mean_i l(μ_i) with
    cs = (C2 − 2(1/15)²v) / (2(1/15)²v + C2) and l(μ) = (2μ(1 − μ) + C1) / (μ² + (1 − μ)² + C1)."""
    ramp = np.repeat((np.arange(16) / 15.0)[:, None], 16, axis=1)[None, None]
    taps = np.arange(-5, 6)
    window = np.exp(-taps ** 2 / (2 * 1.5 ** 2))
    v = float((window * taps ** 2).sum() / window.sum())
    variance = v / 15.0 ** 2
    cs = (SSIM_C2 - 2 * variance) / (2 * variance + SSIM_C2)
    mu = np.arange(5, 11) / 15.0  # the rows whose window lies inside the image
    luminance = (2 * mu * (1 - mu) + SSIM_C1) / (mu ** 2 + (1 - mu) ** 2 + SSIM_C1)
    by_hand = cs * luminance.mean()
    assert ssim(1.0 - ramp, ramp).per_image == pytest.approx([by_hand], rel=1e-9)
    sample_covariance = (SSIM_C2 - 2 * variance * 121 / 120) / (2 * variance * 121 / 120 + SSIM_C2)
    assert abs(sample_covariance * luminance.mean() - by_hand) > 1e-4  # the check tells the two conventions apart
    assert ssim(ramp, 1.0 - ramp).per_image == pytest.approx([by_hand], rel=1e-9)  # symmetric


@pytest.mark.parametrize("bad, message", [
    (np.full((1, 3, 16, 16), 1.5), r"\[0, 1\]"),
    (np.zeros((3, 16, 16)), "N×C×H×W"),
    (np.zeros((1, 3, 16, 16), dtype=np.int16), "uint8 or float"),
])
def test_invalid_images_are_rejected(bad, message):
    with pytest.raises(ImageRangeError, match=message):
        psnr(bad, bad)


def test_mismatched_or_tiny_images_are_rejected():
    with pytest.raises(ImageRangeError, match="same"):
        psnr(images(0), images(1, (3, 3, 16, 16)))
    with pytest.raises(ImageRangeError, match="at least 11"):
        ssim(images(0, (1, 1, 8, 8)), images(1, (1, 1, 8, 8)))


#################################################################################
#                                    LPIPS                                      #
#################################################################################


def test_lpips_is_skipped_without_weights_and_nothing_downloads(offline, monkeypatch):
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse_network)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse_network)
    result, reason = lpips_distance(images(0), images(1))
    assert result is None
    assert reason.startswith("LPIPS skipped") and f"$TORCH_HOME/hub/checkpoints/{ALEXNET_FILE}" in reason
    assert "--lpips-weights" in reason and str(offline) not in reason  # the note is committed: no machine's path
    with pytest.raises(ConfigError, match="does not exist"):
        load_lpips(offline / "typo.pth")


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")  # lpips' own route A call
def test_lpips_with_local_weights_matches_the_torch_home_route(offline, alexnet_file):
    pred, target = images(0), images(1)
    model, reason = load_lpips(alexnet_file)
    assert reason is None
    assert lpips_per_image(model, target, target) == pytest.approx(0.0, abs=1e-7)
    ours = lpips_per_image(model, pred, target)
    assert (ours > 0).all()
    offline.mkdir(parents=True)
    (offline / ALEXNET_FILE).symlink_to(alexnet_file)  # route A: lpips' own loading from the torchvision cache
    reference = lpips.LPIPS(net="alex", version="0.1", verbose=False)
    with torch.no_grad():
        expected = reference(torch.from_numpy(pred).float() * 2 - 1, torch.from_numpy(target).float() * 2 - 1)
    assert ours == pytest.approx(expected.flatten().double().numpy(), abs=1e-6)
    cached, _ = lpips_distance(pred, target)  # no path given: the cached file is found
    assert cached.mean == pytest.approx(ours.mean(), abs=1e-6)


def test_lpips_rejects_images_too_small_for_alexnet(alexnet_file):
    model, _ = load_lpips(alexnet_file)
    with pytest.raises(ImageRangeError, match="at least 31"):
        lpips_per_image(model, images(0, (1, 3, 16, 16)), images(1, (1, 3, 16, 16)))


def test_cli_writes_rows_with_a_skipped_lpips_row(offline, tmp_path):
    pred = (images(0, (4, 32, 32, 3)) * 255).astype(np.uint8)
    np.savez(tmp_path / "pred.npz", images=pred)
    target = pred.copy()
    target[2:] = 255 - pred[2:]  # pairs 0 and 1 identical
    np.savez(tmp_path / "target.npz", images=target)
    csv = tmp_path / "results.csv"
    image_scores.main(["--pred", str(tmp_path / "pred.npz"), "--target", str(tmp_path / "target.npz"),
                        "--results", str(csv), "--experiment", "deft_inpaint", "--method", "deft",
                        "--dataset", "inpaint", "--seed", "3"])
    rows = read_results(csv).set_index("metric")
    assert list(rows.index) == ["lpips", "psnr", "ssim"] and (rows["seed"] == 3).all()
    assert np.isnan(rows.loc["lpips", "value"]) and rows.loc["lpips", "note"].startswith("LPIPS skipped")
    assert rows.loc["psnr", "note"] == ("2 of 4 pairs identical (PSNR +inf), left out of the mean; 95% interval: "
                                        "percentile bootstrap of the mean over the 2 images (2000 resamples, seed 0)")
    assert np.isfinite(rows.loc["psnr", "value"]) and (rows["n_samples"] == 4).all()
    assert rows.loc["ssim", "ci_low"] <= rows.loc["ssim", "value"] <= rows.loc["ssim", "ci_high"]
    assert np.isnan(rows.loc["lpips", "ci_low"])


def test_mean_rows_carry_the_bootstrap_interval_of_the_finite_per_image_values():
    summary = MetricSummary(2.0, np.array([1.0, np.inf, 2.0, 3.0]), n_identical=1)
    row = mean_row("psnr", summary, note="1 of 4 pairs identical")
    assert (row["value"], row["ci_low"], row["ci_high"]) == (2.0, *bootstrap_mean_interval([1.0, 2.0, 3.0]))
    assert 1.0 <= row["ci_low"] < 2.0 < row["ci_high"] <= 3.0
    assert row["note"] == ("1 of 4 pairs identical; 95% interval: percentile bootstrap of the mean over the 3 images "
                           "(2000 resamples, seed 0)")
    assert mean_row("lpips", None, "lpips-x", "LPIPS skipped: no weights") == {
        "metric": "lpips", "value": None, "extractor": "lpips-x", "note": "LPIPS skipped: no weights"}


def test_help_names_the_lpips_weights_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        image_scores.main(["--help"])
    assert exit_info.value.code == 0 and lpips_metric.ALEXNET_FILE in capsys.readouterr().out
