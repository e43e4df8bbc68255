"""The command-line tools as a user runs them: a tiny pre-train → sample round trip, clear errors (every CLI's
--help: tests/test_cli_entry.py)."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def cli(*args, check=True):
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=ENV, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def test_pretrain_then_sample(tmp_path):
    run = tmp_path / "run"
    cli("tunebench.pretrain", "--scale", "smoke", "--out", str(run), "--set", "train.steps=4", "--no-progress")
    assert json.loads((run / "config.json").read_text())["train"]["steps"] == 4
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dataset"] == "source" and len(summary["class_names"]) == 13
    weights = (run / "model/diffusion_pytorch_model.safetensors").read_bytes()
    assert summary["weights_sha256"] == hashlib.sha256(weights).hexdigest()  # compares runs across machines
    assert summary["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and summary["torch_threads"] >= 1
    samples = tmp_path / "samples"
    args = ["tunebench.sample", "--model", str(run / "model"), "--out", str(samples), "--seeds", "0-5",
            "--labels", "cycle", "--grid", str(tmp_path / "grid.png"), "--set", "sample.steps=4", "--no-progress"]
    cli(*args)
    pngs = sorted(p.name for p in samples.glob("*.png"))
    assert pngs == [f"{i:06d}.png" for i in range(6)]
    data = np.load(samples / "samples.npz")
    assert data["images"].shape == (6, 16, 16, 3) and data["images"].dtype == np.uint8
    assert data["labels"].tolist() == [0, 1, 2, 3, 4, 5] and data["seeds"].tolist() == list(range(6))
    protocol = json.loads((samples / "protocol.json").read_text())["protocol"]
    assert protocol["sample"]["steps"] == 4 and protocol["model_scale"] == "smoke" and protocol["n_samples"] == 6
    assert Image.open(tmp_path / "grid.png").size[0] > 16 * 6
    before = (samples / "000003.png").stat().st_mtime_ns
    again = cli(*args)
    assert "0 of 6 images to make" in again.stderr
    assert (samples / "000003.png").stat().st_mtime_ns == before
    clash = cli(*args[:-3], "--set", "sample.steps=5", "--no-progress", check=False)
    assert clash.returncode == 2 and "another protocol" in clash.stderr


def test_bad_config_key_exits_with_the_key_named(tmp_path):
    result = cli("tunebench.pretrain", "--scale", "smoke", "--out", str(tmp_path), "--set", "train.lrr=1",
                 check=False)
    assert result.returncode == 2 and "train.lrr" in result.stderr and "Traceback" not in result.stderr


def test_dry_run_prints_resolved_config(tmp_path):
    result = cli("tunebench.pretrain", "--scale", "mini", "--out", str(tmp_path), "--dry-run")
    assert json.loads(result.stdout)["model"]["patch_size"] == 4
    assert not (tmp_path / "config.json").exists()
