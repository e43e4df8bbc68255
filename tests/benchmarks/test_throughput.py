"""Speed switches and the throughput benchmark on CPU: FLOP counts (DiT-XL/2 and the SD VAE on `meta`), the tidy rows
of a smoke-size run, fp32-vs-bf16 agreement, TF32/autocast scoping, gradient checkpointing, compile and the
data-parallel sharding of batches and seeds (torchrun with gloo on two CPU processes). No timing is asserted."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import throughput, throughput_bench
from tunebench import pretrain
from tunebench.config import ConfigError, resolve
from tunebench.speed import count_flops, peak_flops, precision_scope, prepare_model
from tunebench.training import shard_batch

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def test_flops_of_dit_xl2_and_the_sd_vae_are_counted_not_estimated():
    run = resolve("paper")
    forward = throughput_bench.count_forward_flops(run)
    # The DiT paper's 118.6 "Gflops" for XL/2 at 256 are multiply-adds: 2 FLOPs each.
    assert 2 * 118.5e9 < forward < 2 * 119.0e9
    training = throughput_bench.count_training_flops(run)
    assert training == pytest.approx(712.0e9, rel=1e-3)  # forward + backward = 3.0 forwards, not 6·N·tokens
    assert training < 6 * 675e6 * 256
    vae = throughput_bench.sd_vae_architecture()
    assert throughput_bench.decode_flops(vae, run) == pytest.approx(622.2e9, rel=2e-3)
    encode = throughput_bench.count_module_flops(throughput_bench.sd_vae_architecture, (1, 3, 256, 256),
                                                 lambda module, x: module.encode(x).latent_dist.mean)
    assert encode == pytest.approx(272.7e9, rel=2e-3)


def test_peak_table_matches_device_names():
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4e12)
    assert peak_flops("NVIDIA H100 PCIe", "tf32") == pytest.approx(378e12)
    assert peak_flops("NVIDIA H200", "fp32") == pytest.approx(66.9e12)
    assert peak_flops("Intel(R) Xeon(R) (2 cores)", "bf16") is None


def test_precision_scope_casts_and_restores_the_matmul_mode():
    saved = torch.backends.cuda.matmul.allow_tf32
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with precision_scope("bf16", "cpu"):
        assert (a @ b).dtype == torch.bfloat16
    with precision_scope("fp32", "cpu"):
        assert (a @ b).dtype == torch.float32
    assert torch.backends.cuda.matmul.allow_tf32 == saved
    with pytest.raises(ValueError, match="precision"):
        with precision_scope("fp16", "cpu"):
            pass
    assert count_flops(lambda: a @ b) == 2 * 8 ** 3


def test_smoke_benchmark_writes_tidy_rows_and_agreement(tmp_path):
    out = tmp_path / "bench.csv"
    throughput.main(["--scale", "smoke", "--device", "cpu", "--workloads", "train,sample_ddim50_cfg,features",
                     "--batch-sizes", "2", "--precisions", "bf16", "--warmup", "1", "--iterations", "1",
                     "--out", str(out)])
    rows = pd.read_csv(out)
    assert list(rows.columns) == list(throughput_bench.COLUMNS)
    assert list(zip(rows.workload, rows.precision)) == [
        ("train", "bf16"), ("sample_ddim50_cfg", "bf16"), ("features", "bf16")]
    assert (rows.images_per_s > 0).all() and rows.mfu.isna().all()  # no peak is known for a CPU
    assert rows.device.str.contains("cores").all()
    run = resolve("smoke")
    train = rows[rows.workload == "train"].iloc[0]
    assert train.gflops_per_image == pytest.approx(throughput_bench.count_training_flops(run) / 1e9, abs=1e-3)
    ddim = rows[rows.workload == "sample_ddim50_cfg"].iloc[0]
    assert ddim.sampler_steps == 50 and ddim.guidance == 1.5 and ddim.seeds == "0-1"
    assert ddim.gflops_per_image == pytest.approx(100 * throughput_bench.count_forward_flops(run) / 1e9, abs=1e-3)
    assert rows[rows.workload == "features"].resolution.eq(299).all()
    table = (tmp_path / "bench.md").read_text()
    assert table.count("| bf16 |") == 3 and "cores" in table.splitlines()[0]
    agreement = pd.read_csv(tmp_path / "bench_agreement.csv").set_index("quantity")
    assert list(agreement.index) == ["eps_forward", "sample_ddim50_cfg"]  # no VAE in pixel space
    eps = agreement.loc["eps_forward"]
    assert 0 < eps.rel_rms_error <= eps.tolerance and bool(eps.within_tolerance)
    samples = agreement.loc["sample_ddim50_cfg"]
    assert samples.rel_rms_error > 0 and pd.isna(samples.within_tolerance)  # bf16 ran; random weights: not judged


def test_benchmark_flags_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="--workloads"):
        throughput.main(["--workloads", "train,nope", "--out", str(tmp_path / "x.csv")])
    with pytest.raises(ConfigError, match="--compile"):
        throughput.main(["--compile", "maybe", "--out", str(tmp_path / "x.csv")])
    assert not (tmp_path / "x.csv").exists()


def read_stats(out: Path) -> list[dict]:
    """The rows of a run's stats.jsonl."""
    return [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]


def test_gradient_checkpointing_changes_no_number(tmp_path):
    losses = {}
    for flag in ("false", "true"):
        out = tmp_path / flag
        pretrain.main(["--scale", "smoke", "--set", "train.steps=3", "--set", f"train.gradient_checkpointing={flag}",
                       "--set", "train.checkpoint_every=3", "--set", "train.log_every=1", "--out", str(out),
                       "--no-progress"])
        losses[flag] = [row["loss"] for row in read_stats(out)]
    assert len(losses["true"]) == 3 and losses["true"] == losses["false"]


def test_compile_keeps_the_state_dict_names(tiny_model):
    names = list(tiny_model.state_dict())
    prepare_model(tiny_model, gradient_checkpointing=True, compile_model=True)
    assert list(tiny_model.state_dict()) == names  # checkpoints stay loadable by uncompiled runs
    assert tiny_model.gradient_checkpointing


def test_compile_without_a_compiler_names_the_key(tiny_model):
    import torch._inductor.config as inductor_config
    from torch._inductor.cpp_builder import cpp_compiler_search

    cpp_compiler_search.cache_clear()  # the search is cached per list of names
    try:
        with inductor_config.patch({"cpp.cxx": ("no-such-g++",)}), pytest.raises(
                ConfigError, match=r"'sample.compile' is on, but torch.compile needs a C\+\+ compiler"):
            prepare_model(tiny_model, compile_model=True, compile_key="sample.compile")
    finally:
        cpp_compiler_search.cache_clear()
    assert inductor_config.cpp.cxx != ("no-such-g++",)  # the patch is undone


def test_shard_batch_splits_each_part_evenly():
    batch = {"images": torch.arange(8), "retention": torch.arange(100, 104), "note": "kept"}
    shards = [shard_batch(batch, rank, 2) for rank in range(2)]
    assert torch.cat([s["images"] for s in shards]).tolist() == list(range(8))
    assert [s["retention"].tolist() for s in shards] == [[100, 101], [102, 103]]
    assert shards[1]["note"] == "kept" and shard_batch(batch, 0, 1) is batch
    with pytest.raises(ConfigError, match="retention.*train.batch_size"):
        shard_batch({"images": torch.arange(8), "retention": torch.arange(3)}, 0, 2)


def torchrun(*args, cwd):
    """Two gloo processes on this CPU, as `accelerate launch` starts one per GPU."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", *args],
                          cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)


def test_two_process_sampling_makes_the_single_process_images(pretrained, tmp_path):
    common = ["--model", str(pretrained), "--seeds", "0-4", "--no-progress", "--device", "cpu"]
    single = subprocess.run([sys.executable, "-m", "tunebench.sample", *common, "--out", str(tmp_path / "one")],
                            env=ENV, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    double = torchrun("-m", "tunebench.sample", *common, "--out", str(tmp_path / "two"), cwd=tmp_path)
    assert double.returncode == 0, double.stderr
    one, two = (np.load(tmp_path / name / "samples.npz") for name in ("one", "two"))
    assert two["seeds"].tolist() == list(range(5))
    np.testing.assert_array_equal(one["images"], two["images"])


def test_two_process_training_writes_once_and_exports(tmp_path):
    out = tmp_path / "ddp"
    result = torchrun("-m", "tunebench.pretrain", "--scale", "smoke", "--set", "train.steps=4", "--set",
                      "train.checkpoint_every=2", "--set", "train.log_every=1", "--out", str(out), "--no-progress",
                      cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [row["step"] for row in read_stats(out)] == [1, 2, 3, 4]  # rank 0 alone writes the stats
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-0000002", "checkpoint-0000004"]
    weights = (out / "model" / "diffusion_pytorch_model.safetensors").read_bytes()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["weights_sha256"] == hashlib.sha256(weights).hexdigest()  # written by rank 0 after its export


def test_trained_weights_make_the_sample_agreement_judged(pretrained, tmp_path):
    out = tmp_path / "bench.csv"
    throughput.main(["--scale", "smoke", "--device", "cpu", "--model", str(pretrained), "--workloads", "train",
                     "--batch-sizes", "2", "--precisions", "fp32", "--warmup", "0", "--iterations", "1",
                     "--out", str(out)])
    assert pd.read_csv(out).model.tolist() == [str(pretrained)]
    samples = pd.read_csv(tmp_path / "bench_agreement.csv").set_index("quantity").loc["sample_ddim50_cfg"]
    assert samples.within_tolerance == (samples.rel_rms_error <= samples.tolerance)  # judged either way
