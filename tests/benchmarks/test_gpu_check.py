"""scripts/gpu-check.sh: its --cpu-tiny mode runs every step (the throughput grid and agreement, the latent cache,
the retention set, a 50-step Diff-Tuning fine-tune from the cache, DDIM-50 sampling of the export) through the
suite's CLIs and reports them; the report names the grid cells a step did not measure and why. No timing is
asserted."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmarks.gpu_check_report import write_report
from benchmarks.throughput_table import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
# The script runs `.venv/bin/python` where the checkout has one, else the `python` on PATH: this interpreter.
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_cpu_tiny_mode_runs_every_step_and_reports_it(tmp_path):
    result = subprocess.run(["bash", "scripts/gpu-check.sh", "--cpu-tiny", str(tmp_path)], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = pd.read_csv(tmp_path / "throughput-cpu-tiny.csv")
    assert list(rows.columns) == list(COLUMNS)
    assert list(zip(rows.workload, rows.precision)) == [
        ("train", "tf32"), ("train", "bf16"), ("sample_ddim50_cfg", "tf32"), ("sample_ddim50_cfg", "bf16"),
        ("cache_latents", "tf32"), ("finetune_diff_tuning", "tf32"), ("sample_cli_ddim50_cfg", "tf32")]
    assert not rows.compile.any() and (rows.device == rows.device[0]).all()
    assert rows.model.str.contains("random weights").all()
    timed = rows[rows.workload != "cache_latents"]  # 20 tiny encodes may take less than the sidecar's 0.1 s
    assert all(math.isfinite(rate) and rate > 0 for rate in timed.images_per_s)
    assert all(math.isfinite(gflops) and gflops > 0 for gflops in rows.gflops_per_image)
    finetune = rows.set_index("workload").loc["finetune_diff_tuning"]
    assert finetune.iterations == 40 and finetune.batch_size == 10  # steps 11-50 timed, smoke's batch of 8 + 2
    assert "50 steps of 8 target latents from the cache + 2 retention images" in finetune.note
    sample = rows.set_index("workload").loc["sample_cli_ddim50_cfg"]
    assert sample.sampler_steps == 50 and sample.guidance == 1.5 and sample.seeds == "0-3"
    agreement = pd.read_csv(tmp_path / "throughput-cpu-tiny_agreement.csv").set_index("quantity")
    assert list(agreement.index) == ["eps_forward", "sample_ddim50_cfg"]
    assert all(math.isfinite(error) for error in agreement.rel_rms_error)
    page = (tmp_path / "throughput-cpu-tiny.md").read_text()
    steps = page.split("## Steps")[1]
    assert all(f"\n| {step} | " in steps for step in ("grid", "inputs", "latents", "retention", "finetune", "sample"))
    assert steps.count("| ok |") == 6 and "Not measured" not in page and "--cpu-tiny" in page


def test_the_report_names_the_cells_a_cut_off_step_did_not_measure(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out" / "throughput-h100.csv"
    work.mkdir()
    row = dict.fromkeys(COLUMNS, "") | {
        "workload": "train", "scale": "paper", "model": "DiT 28x1152 patch 2 (random weights)", "batch_size": 32,
        "precision": "bf16", "compile": False, "images_per_s": 350.0, "gflops_per_image": 712.0, "mfu": 0.25,
        "device": "NVIDIA H100 80GB HBM3", "torch": "2.14.1", "diffusers": "0.42.1", "git_commit": "0123456789ab"}
    pd.DataFrame([row]).to_csv(work / "grid-off.csv", index=False)
    (work / "timings.tsv").write_text("grid\tok\t100.0\ninputs\tfailed (exit 2)\t1.0\n"
                                      "grid_on_bf16\tcut off at the budget (200 s)\t215.0\n")
    missing = write_report(work, out, (["train"], [32], ["bf16"], [False, True]), 470.0, 480.0, "bash x")
    assert missing == ["train, batch 32, bf16, compile on: step `grid_on_bf16` cut off at the budget (200 s)"]
    assert pd.read_csv(out).images_per_s.tolist() == [350.0]
    page = out.with_suffix(".md").read_text()
    assert "≥ 300 (met)" in page and "25.0%" in page and "- train, batch 32, bf16, compile on" in page
    assert "| finetune | " in page and "not reached" in page  # a step missing from timings.tsv never started
    assert out.with_name("throughput-h100_agreement.csv").read_text().startswith("quantity,")
