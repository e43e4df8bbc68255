"""The DEFT command lines end to end at smoke scale: train a head, reconstruct with DEFT and a baseline, score."""

import json

import numpy as np
import pytest

from benchmarks.per_image import read_per_image
from benchmarks.results import read_results
from deft import evaluate, paired, reconstruct
from deft import train as deft_train
from deft.amortised_model import load_conditional
from tests.conftest import TEST_FACTS
from tunebench.models import export_dit


@pytest.fixture
def backbone(tiny_model, smoke_run, tmp_path):
    """The smoke DiT exported as a save_pretrained folder (its null label is the unconditional model)."""
    return export_dit(tiny_model, tmp_path / "uncond", smoke_run, facts=TEST_FACTS)


def test_train_reconstruct_evaluate(backbone, tmp_path):
    out = tmp_path / "head"
    deft_train.main(["--scale", "smoke", "--backbone", str(backbone), "--task", "sr4", "--out", str(out),
                     "--no-progress"])
    assert (out / "head/diffusion_pytorch_model.safetensors").is_file() and (out / "head_ema/config.json").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["head_parameters"] > 0 and summary["head_fraction"] == pytest.approx(
        summary["head_parameters"] / summary["backbone_parameters"])
    sidecar = json.loads((out / "head/tunebench.json").read_text())
    assert sidecar["run_config"]["task"]["operator"] == "sr_avgpool" and sidecar["run_config"]["train"]["steps"] == 6

    results = tmp_path / "deft.csv"
    for method, extra in (("deft", ["--head", str(out / "head")]), ("ddrm", [])):
        recon = tmp_path / method
        reconstruct.main(["--scale", "smoke", "--backbone", str(backbone), "--task", "sr4", "--method", method,
                          *extra, "--out", str(recon), "--no-progress"])
        with np.load(recon / "recon.npz") as data:
            assert data["images"].shape == (4, 16, 16, 3) and data["images"].dtype == np.uint8
        cost = json.loads((recon / "summary.json").read_text())
        assert cost["n_images"] == 4 and cost["nfe_per_image"] == 5 and cost["sample_seconds"] > 0
        train_summary = ["--train-summary", str(out / "summary.json")] if method == "deft" else []
        evaluate.main(["--recon", str(recon), "--results", str(results), *train_summary,
                       "--per-image", str(tmp_path / f"{method}.per_image.csv")])
    rows = read_results(results)
    deft_rows = rows[rows["method"] == "deft"].set_index("metric")
    assert {"psnr", "ssim", "lpips", "kid_inception", "nfe", "backbone_vjps", "time_sample_s", "time_train_s",
            "time_total_s"} <= set(deft_rows.index)
    assert deft_rows.loc["psnr", "value"] > 0 and deft_rows.loc["nfe", "value"] == 5
    assert deft_rows.loc["time_total_s", "value"] == pytest.approx(
        deft_rows.loc["time_train_s", "value"] + deft_rows.loc["time_sample_s", "value"])
    assert "KID skipped" in deft_rows.loc["kid_inception", "note"]
    assert deft_rows.loc["time_train_s", "note"] == "head training, from stats.jsonl"
    head = json.loads((out / "summary.json").read_text())  # the head's size as a share of the frozen backbone
    share = head["head_parameters"] / head["backbone_parameters"]
    assert deft_rows.loc["head_fraction", "value"] == pytest.approx(share)
    assert deft_rows.loc["trainable_params", "value"] == head["head_parameters"]
    # Each mean has its bootstrap interval over the 4 images, and the per-image CSV holds the values it averages.
    per_image = read_per_image(tmp_path / "deft.per_image.csv")
    for metric in ("psnr", "ssim"):
        row = deft_rows.loc[metric]
        assert row["ci_low"] <= row["value"] <= row["ci_high"] and "over the 4 images" in row["note"]
        assert per_image[metric].mean() == pytest.approx(row["value"])
    assert (per_image["dataset"].tolist(), per_image["method"].tolist()) == (["sr4"] * 4, ["deft"] * 4)
    assert per_image["lpips"].isna().all()  # skipped without AlexNet weights
    paired.main(["--per-image", str(tmp_path / "deft.per_image.csv"), str(tmp_path / "ddrm.per_image.csv"),
                 "--scale", "smoke", "--out", str(tmp_path / "paired.csv")])
    differences = read_results(tmp_path / "paired.csv").set_index("metric")
    assert set(differences.index) == {"psnr_diff", "ssim_diff", "lpips_diff"} and set(differences["method"]) == {"ddrm"}
    ddrm = rows[rows["method"] == "ddrm"].set_index("metric")
    assert differences.loc["psnr_diff", "value"] == pytest.approx(deft_rows.loc["psnr", "value"] -
                                                                  ddrm.loc["psnr", "value"])
    assert differences.loc["psnr_diff", "n_samples"] == 4 and np.isnan(differences.loc["lpips_diff", "value"])
    assert set(rows[rows["method"] == "ddrm"]["metric"]) >= {"psnr", "nfe"}
    assert "time_train_s" not in set(rows[rows["method"] == "ddrm"]["metric"])
    # A switched run's rows name the switch and the task of the default they are compared with (deft_protocol).
    evaluate.main(["--recon", str(tmp_path / "ddrm"), "--results", str(tmp_path / "protocol.csv"), "--experiment",
                   "deft_protocol", "--method", "ddrm@row14:task=sr4_bicubic", "--dataset", "sr4_avgpool_default"])
    switched = read_results(tmp_path / "protocol.csv")
    assert set(zip(switched["experiment"], switched["method"], switched["dataset"])) == {
        ("deft_protocol", "ddrm@row14:task=sr4_bicubic", "sr4_avgpool_default")}
    # The truth is the same test images for every method.
    with np.load(tmp_path / "deft/truth.npz") as a, np.load(tmp_path / "ddrm/truth.npz") as b:
        assert np.array_equal(a["images"], b["images"])


def test_reconstruct_refuses_a_head_of_another_task_and_an_unsupported_baseline(backbone, tmp_path, capsys):
    out = tmp_path / "head"
    deft_train.main(["--scale", "smoke", "--backbone", str(backbone), "--task", "sr4", "--out", str(out),
                     "--no-progress"])
    with pytest.raises(SystemExit) as stop:
        reconstruct.run_cli(reconstruct.main, ["--scale", "smoke", "--backbone", str(backbone), "--task", "hdr",
                                               "--method", "deft", "--head", str(out / "head"),
                                               "--out", str(tmp_path / "x")])
    assert stop.value.code == 2 and "task.operator" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a head sees g as its training made it: the gradient switch must match
        reconstruct.run_cli(reconstruct.main, ["--scale", "smoke", "--backbone", str(backbone), "--task", "sr4",
                                               "--set", "task.gradient=exact_vjp", "--method", "deft",
                                               "--head", str(out / "head"), "--out", str(tmp_path / "w")])
    assert "trained with task.gradient='official', not 'exact_vjp'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reconstruct.run_cli(reconstruct.main, ["--scale", "smoke", "--backbone", str(backbone), "--task", "hdr",
                                               "--method", "ddrm", "--out", str(tmp_path / "y")])
    assert "DDRM needs an SVD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reconstruct.run_cli(reconstruct.main, ["--scale", "smoke", "--backbone", str(backbone), "--task", "hdr",
                                               "--method", "deft", "--out", str(tmp_path / "z")])
    assert "--head is required" in capsys.readouterr().err


def test_train_without_backbone_names_the_flag(capsys):
    with pytest.raises(SystemExit) as stop:
        deft_train.run_cli(deft_train.main, ["--scale", "smoke", "--task", "sr4", "--out", "/tmp/unused"])
    assert stop.value.code == 2 and "--backbone" in capsys.readouterr().err


def test_amortised_model_trains_from_scratch_and_reconstructs(backbone, tmp_path, capsys):
    from deft import amortised

    out = tmp_path / "amortised"
    amortised.main(["--scale", "smoke", "--task", "inpaint", "--set", "train.steps=3", "--out", str(out),
                    "--no-progress"])
    model = load_conditional(out / "model")
    assert model.config.in_channels == 3 + 3 + 1 and model.config.out_channels == 3  # x_t, A†y, mask → ε
    recon = tmp_path / "recon"
    reconstruct.main(["--scale", "smoke", "--backbone", str(backbone), "--task", "inpaint", "--method", "amortised",
                      "--conditional", str(out / "model"), "--out", str(recon), "--no-progress"])
    cost = json.loads((recon / "summary.json").read_text())
    assert cost["nfe_per_image"] == 5 and cost["sampler"] == "ddim"
    # Scored with its own training summary: the training time is the model's, and it has no head share.
    evaluate.main(["--recon", str(recon), "--results", str(tmp_path / "amortised.csv"),
                   "--train-summary", str(out / "summary.json")])
    rows = read_results(tmp_path / "amortised.csv").set_index("metric")
    assert rows.loc["time_train_s", "note"] == "model (from random weights) training, from stats.jsonl"
    assert rows.loc["time_train_s", "value"] > 0 and "head_fraction" not in rows.index
    with pytest.raises(SystemExit):
        amortised.run_cli(amortised.main, ["--scale", "smoke", "--task", "phase_retrieval", "--out",
                                           str(tmp_path / "pr")])
    assert "no pseudo-inverse" in capsys.readouterr().err
