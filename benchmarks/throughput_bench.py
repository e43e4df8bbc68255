"""The measurements behind `python -m benchmarks.throughput` (its docstring says what is timed and how): one tidy row
per workload and setting, the fp32-vs-bf16 agreement rows and the Markdown table."""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import itertools
import logging
import os
import time

import diffusers
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from diffusers import AutoencoderKL
from torch.nn.attention import SDPBackend, sdpa_kernel
from torchvision.models import inception_v3

from benchmarks.throughput_settings import SDPA_KERNELS, Setting
from benchmarks.throughput_table import AGREEMENT_COLUMNS, COLUMNS, render_table
from tunebench.config import RunConfig, resolve
from tunebench.io import atomic_path, git_commit, write_csv
from tunebench.models import build_dit, fill_zero_parameters, load_dit, load_vae, null_class
from tunebench.pretraining import make_loss
from tunebench.sampling import sample_batches
from tunebench.speed import count_flops, device_name, peak_flops, precision_scope, prepare_model
from tunebench.training import make_optimizer, step_generator, training_step, update_ema

log = logging.getLogger("benchmarks.throughput")

SAMPLERS = {"sample_ddpm250_cfg": ("ddpm", 250), "sample_ddim50_cfg": ("ddim", 50)}
GUIDANCE = 1.5
FEATURE_SIDE = 299  # Inception-v3's input side; FID extractors resize every image to it
# Stated fp32-vs-bf16 tolerances (relative RMS error against strict fp32): bf16 keeps 8 mantissa bits (3e-3
# relative per rounding), which a forward pass accumulates to about 1e-2; the 50 DDIM steps amplify it.
TOLERANCES = {"eps_forward": 0.03, "sample_ddim50_cfg": 0.10, "vae_decode": 0.03}
# Judged only with trained weights: an untrained network is no denoiser, and its 50-step trajectories diverge from
# small differences whatever the number format (the error is reported, not judged).
NEEDS_TRAINED_WEIGHTS = {"sample_ddim50_cfg"}


#################################################################################
#                               Models and inputs                               #
#################################################################################


def make_dit(run: RunConfig, weights: str | None, device: str) -> torch.nn.Module:
    """The DiT to time: local weights, or a random one whose zero-initialised layers (adaLN, output) get small
    noise so that outputs, and so the bf16 agreement, are not trivially zero."""
    if weights:
        return load_dit(weights).to(device)
    torch.manual_seed(0)
    return fill_zero_parameters(build_dit(run.model), std=0.02).to(device)


def sd_vae_architecture() -> AutoencoderKL:
    """Stable Diffusion's VAE (sd-vae-ft-*: 128/256/512/512 channels, 2 layers per block, 4 latent channels)."""
    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=2, sample_size=256)


def tiny_vae_architecture(seed: int = 0) -> AutoencoderKL:
    """A tiny AutoencoderKL standing in for the SD VAE on CPU (4 latent channels, one halving: 16 px → 8×8
    latents), with `seed`'s random weights: the test suite's VAE and `scripts/gpu-check.sh --cpu-tiny`'s."""
    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=4)


def make_vae(run: RunConfig, weights: str | None, device: str, channels_last: bool) -> AutoencoderKL | None:
    """The VAE of a latent-space scale (paper): local weights or the SD architecture; None in pixel space."""
    if run.model.in_channels != 4 and not weights:
        return None
    vae = (load_vae(weights) if weights else sd_vae_architecture()).eval().requires_grad_(False).to(device)
    return vae.to(memory_format=torch.channels_last) if channels_last else vae


def pixel_side(run: RunConfig, vae) -> int:
    """Image side: the latent side times the VAE's downsampling, or the model's own side in pixel space."""
    if vae is None:
        return run.model.sample_size
    return run.model.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)


def model_batch(run: RunConfig, batch: int, device: str | torch.device) -> dict:
    """A training batch already in model space (pre-extracted latents or pixels) with labels."""
    generator = torch.Generator().manual_seed(batch)
    m = run.model
    images = torch.randn(batch, m.in_channels, m.sample_size, m.sample_size, generator=generator).to(device)
    labels = torch.randint(m.num_classes, (batch,), generator=generator).to(device)
    return {"images": images, "labels": labels}


def fresh_accelerator(precision: str, device: str) -> Accelerator:
    """An Accelerator for one number format. accelerate keeps one global state per process, so it is reset first."""
    AcceleratorState._reset_state(True)
    return Accelerator(mixed_precision="bf16" if precision == "bf16" else "no", cpu=device == "cpu")


#################################################################################
#                                  Timing                                       #
#################################################################################


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so wall-clock time covers it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(work, warmup: int, iterations: int, device: str) -> tuple[float, float, float | None]:
    """(seconds for `iterations` calls after `warmup` untimed ones, warm-up seconds, peak GPU memory in GiB)."""
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    for _ in range(warmup):
        work()
    synchronize(device)
    warm = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(iterations):
        work()
    synchronize(device)
    seconds = time.perf_counter() - started
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    return seconds, warm, memory


#################################################################################
#                                 Workloads                                     #
#################################################################################


def train_work(run: RunConfig, model, setting: Setting, device: str):
    """(one training step + EMA update as a callable, FLOPs per image): the pipeline's step on a fixed batch."""
    accelerator = fresh_accelerator(setting.precision, device)
    model.train()
    prepare_model(model, setting.gradient_checkpointing, setting.compile, "--compile")
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = make_optimizer(model, run.train)
    loss_fn = make_loss(run, null_class(model))
    batch = model_batch(run, setting.batch_size, device)
    steps = itertools.count()

    def step():
        """One update and its EMA."""
        index = next(steps)
        training_step(model, optimizer, accelerator, loss_fn, batch, step_generator(0, index, 2), run.train.lr)
        update_ema(ema, model, run.train.ema_decay)

    return step, count_training_flops(run)


def count_training_flops(run: RunConfig) -> float:
    """Model FLOPs of one training image (forward + backward of the loss, no recomputation), counted on `meta`."""
    with torch.device("meta"):
        model = build_dit(run.model)
    loss_fn = make_loss(run, null_class(model))
    batch = model_batch(run, 1, "meta")
    return count_flops(lambda: loss_fn(model, batch, step_generator(0, 0, 2))["loss"].mean().backward())


def count_forward_flops(run: RunConfig) -> float:
    """FLOPs of one DiT forward on one image, counted on `meta`."""
    with torch.device("meta"):
        model = build_dit(run.model)
    batch = model_batch(run, 1, "meta")
    with torch.no_grad():
        return count_flops(lambda: model(batch["images"], batch["labels"], batch["labels"]))


def count_module_flops(make_module, shape: tuple[int, ...], call) -> float:
    """FLOPs of `call(module, x)` for one input of `shape`, with the module built on `meta`."""
    with torch.device("meta"):
        module = make_module()
    with torch.no_grad():
        return count_flops(lambda: call(module, torch.zeros(shape, device="meta")))


def sample_config(run: RunConfig, workload: str, setting: Setting, steps: int | None = None):
    """The scale's sampling protocol for a sampler workload, one batch per forward (guidance doubles it)."""
    sampler, default_steps = SAMPLERS[workload]
    return dataclasses.replace(run.sample, sampler=sampler, steps=steps or default_steps, guidance_scale=GUIDANCE,
                               batch_size=setting.batch_size, compute_chunk=2 * setting.batch_size,
                               precision=setting.precision, eta=0.0)


def sample_work(run: RunConfig, model, vae, workload: str, setting: Setting, device: str):
    """(a callable sampling one batch with the workload's sampler, its warm-up callable, FLOPs per image)."""
    model.eval()
    prepare_model(model, compile_model=setting.compile, compile_key="--compile")
    seeds = list(range(setting.batch_size))
    labels = [seed % run.model.num_classes for seed in seeds]

    def run_sampler(protocol):
        """Sample every seed once."""
        for _ in sample_batches(model, run.diffusion, protocol, seeds, labels, vae=vae,
                                vae_scaling=run.model.vae_scaling, device=device, progress=False):
            pass

    protocol, warmup = sample_config(run, workload, setting), sample_config(run, workload, setting, steps=2)
    flops = protocol.steps * 2 * count_forward_flops(run)
    if vae is not None:
        flops += decode_flops(vae, run)
    return (lambda: run_sampler(protocol)), (lambda: run_sampler(warmup)), flops


def decode_flops(vae, run: RunConfig) -> float:
    """FLOPs of decoding one latent."""
    m = run.model
    shape = (1, m.in_channels, m.sample_size, m.sample_size)
    return count_module_flops(lambda: AutoencoderKL.from_config(vae.config), shape, lambda module, z: module.decode(z))


def vae_work(run: RunConfig, vae, workload: str, setting: Setting, device: str):
    """(encode or decode one batch as a callable, FLOPs per image)."""
    side, m, b = pixel_side(run, vae), run.model, setting.batch_size
    shape = (b, 3, side, side) if workload == "vae_encode" else (b, m.in_channels, m.sample_size, m.sample_size)
    memory_format = torch.channels_last if setting.channels_last else torch.contiguous_format
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device, memory_format=memory_format)
    call = ((lambda module, z: module.encode(z).latent_dist.mean) if workload == "vae_encode"
            else (lambda module, z: module.decode(z).sample))

    def work():
        """One batch through the VAE."""
        with torch.no_grad(), precision_scope(setting.precision, device):
            call(vae, x)

    return work, count_module_flops(lambda: AutoencoderKL.from_config(vae.config), (1, *shape[1:]), call)


def inception_architecture() -> torch.nn.Module:
    """Inception-v3 with random weights: the architecture of FID's feature extractor (no weights are loaded)."""
    return inception_v3(weights=None, aux_logits=False, init_weights=False).eval()


def features_work(setting: Setting, device: str):
    """(Inception-v3 pool features of one batch of 299² images as a callable, FLOPs per image)."""
    net = inception_architecture().to(device)
    memory_format = torch.channels_last if setting.channels_last else torch.contiguous_format
    net = net.to(memory_format=memory_format)
    net.fc = torch.nn.Identity()  # the 2048-d pool features FID uses
    x = torch.randn(setting.batch_size, 3, FEATURE_SIDE, FEATURE_SIDE).to(device, memory_format=memory_format)

    def work():
        """One batch of features."""
        with torch.no_grad(), precision_scope(setting.precision, device):
            net(x)

    return work, count_module_flops(inception_architecture, (1, 3, FEATURE_SIDE, FEATURE_SIDE),
                                    lambda module, z: module(z))


#################################################################################
#                                Measurement                                    #
#################################################################################


def sdpa_scope(backend: str):
    """Restrict scaled-dot-product attention to one kernel ('auto': torch's own choice)."""
    return contextlib.nullcontext() if backend == "auto" else sdpa_kernel([getattr(SDPBackend, SDPA_KERNELS[backend])])


def measure(args: argparse.Namespace, run: RunConfig, workload: str, setting: Setting) -> dict | None:
    """One CSV row: time `workload` under `setting`, or None when the scale has nothing to time (no VAE)."""
    device = args.device
    model = make_dit(run, args.model, device) if workload == "train" or workload in SAMPLERS else None
    vae = make_vae(run, args.vae, device, setting.channels_last)
    warmup, iterations = args.warmup, args.iterations
    if workload == "train":
        work, flops = train_work(run, model, setting, device)
    elif workload in SAMPLERS:
        work, warm_work, flops = sample_work(run, model, vae, workload, setting, device)
        warm_work()  # compiles and allocates at two steps, so the timed runs are full samples only
        warmup, iterations = 0, args.sample_repeats
    elif vae is None and workload.startswith("vae"):
        log.info("%s: the %s scale works in pixel space (no VAE); skipped", workload, run.scale)
        return None
    elif workload.startswith("vae"):
        work, flops = vae_work(run, vae, workload, setting, device)
    else:
        work, flops = features_work(setting, device)
    load = os.getloadavg()[0]  # other jobs on a shared machine slow a CPU measurement; recorded, not corrected
    with sdpa_scope(args.sdpa):
        seconds, warm_seconds, memory = timed(work, warmup, iterations, device)
    images = setting.batch_size * iterations
    rate = images / seconds
    peak = peak_flops(args.device_name, "tf32" if setting.precision == "tf32" else setting.precision)
    achieved = rate * flops
    row = {"workload": workload, "scale": run.scale, "model": model_name(run, args, workload),
           "resolution": FEATURE_SIDE if workload == "features" else pixel_side(run, vae),
           "batch_size": setting.batch_size, "precision": setting.precision,
           "compile": setting.compile, "gradient_checkpointing": setting.gradient_checkpointing and workload == "train",
           "channels_last": setting.channels_last, "sdpa": args.sdpa,
           "sampler_steps": SAMPLERS[workload][1] if workload in SAMPLERS else "",
           "guidance": GUIDANCE if workload in SAMPLERS else "",
           "seeds": f"0-{setting.batch_size - 1}" if workload in SAMPLERS else "", "iterations": iterations,
           "seconds": round(seconds, 4), "images_per_s": round(rate, 3), "gflops_per_image": round(flops / 1e9, 3),
           "achieved_tflops": round(achieved / 1e12, 3), "peak_tflops": round(peak / 1e12, 1) if peak else "",
           "mfu": round(achieved / peak, 4) if peak else "", "peak_memory_gib": round(memory, 2) if memory else "",
           "warmup_seconds": round(warm_seconds, 2), "load_avg_1min": round(load, 2), "device": args.device_name,
           "torch": torch.__version__, "diffusers": diffusers.__version__, "git_commit": args.commit,
           "note": NOTES[workload.split("_")[0]]}
    log.info("%-20s batch %4d %-4s compile=%-5s %9.2f images/s  %s", workload, setting.batch_size, setting.precision,
             setting.compile, rate, f"MFU {row['mfu']:.1%}" if peak else f"{achieved / 1e12:.2f} TFLOP/s")
    return row


NOTES = {
    "train": "AdamW step + EMA update timed; inputs already latents (VAE encode not in the loop); model FLOPs only",
    "sample": "full sampler incl. per-sample noise, scheduler and VAE decode (if any); guidance doubles the batch",
    "vae": "one batch, no grad",
    "features": "Inception-v3 architecture with random weights at 299², pool features, no resize or decoding",
}


def model_name(run: RunConfig, args: argparse.Namespace, workload: str = "train") -> str:
    """What was timed: the weights folder, or the architecture with random weights."""
    if workload == "features":
        return "Inception-v3 (random weights)"
    if workload.startswith("vae"):
        return str(args.vae) if args.vae else "SD VAE architecture (random weights)"
    if args.model:
        return str(args.model)
    m = run.model
    return f"DiT {m.num_layers}x{m.num_heads * m.head_dim} patch {m.patch_size} (random weights)"


def relative_errors(output: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(‖output − reference‖ / ‖reference‖, max |output − reference|)."""
    difference = output.float() - reference.float()
    return float(difference.norm() / reference.float().norm().clamp_min(1e-12)), float(difference.abs().max())


def agreement_rows(args: argparse.Namespace, run: RunConfig, batch: int) -> list[dict]:
    """bf16 against strict fp32: one ε forward, DDIM-50 samples with guidance, and (latent scales) the VAE decode."""
    device = args.device
    model = make_dit(run, args.model, device).eval()
    inputs = model_batch(run, batch, device)
    t = torch.randint(run.diffusion.num_train_timesteps, (batch,), generator=torch.Generator().manual_seed(1))
    outputs = {}
    for precision in ("fp32", "bf16"):
        with torch.no_grad(), precision_scope(precision, device):
            outputs[precision] = model(inputs["images"], t.to(device), inputs["labels"]).sample.float()
    compared = {"eps_forward": (outputs["bf16"], outputs["fp32"])}
    samples = {}
    vae = make_vae(run, args.vae, device, channels_last=False)
    for precision in ("fp32", "bf16"):
        setting = Setting(batch, precision, False, False, False)
        protocol = sample_config(run, "sample_ddim50_cfg", setting)
        seeds = list(range(batch))
        samples[precision] = torch.cat([images for _, images in sample_batches(
            model, run.diffusion, protocol, seeds, [s % run.model.num_classes for s in seeds], vae=vae,
            vae_scaling=run.model.vae_scaling, device=device, progress=False)])
    compared["sample_ddim50_cfg"] = (samples["bf16"], samples["fp32"])
    if vae is not None:
        latents = inputs["images"]
        decoded = {}
        for precision in ("fp32", "bf16"):
            with torch.no_grad(), precision_scope(precision, device):
                decoded[precision] = vae.decode(latents / run.model.vae_scaling).sample.float()
        compared["vae_decode"] = (decoded["bf16"], decoded["fp32"])
    rows = []
    for quantity, (output, reference) in compared.items():
        rel, worst = relative_errors(output, reference)
        judged = args.model is not None or quantity not in NEEDS_TRAINED_WEIGHTS
        rows.append({"quantity": quantity, "scale": run.scale, "model": model_name(run, args), "batch_size": batch,
                     "reference": "fp32", "precision": "bf16", "rel_rms_error": f"{rel:.3e}",
                     "max_abs_error": f"{worst:.3e}", "tolerance": TOLERANCES[quantity],
                     "within_tolerance": rel <= TOLERANCES[quantity] if judged else "",
                     "device": args.device_name, "git_commit": args.commit,
                     "note": "" if judged else "random weights: reported, not judged (pass --model to judge)"})
        log.info("bf16 vs fp32 %-18s relative RMS error %.2e (tolerance %.2f%s)", quantity, rel, TOLERANCES[quantity],
                 "" if judged else ", not judged: random weights")
    return rows


#################################################################################
#                                   Run                                         #
#################################################################################


def run_benchmark(args: argparse.Namespace, workloads: list[str], settings: list[Setting]) -> None:
    """Measure every workload under every setting on args.device and write the CSV, its table and the agreement."""
    args.device_name, args.commit = device_name(args.device), git_commit()
    run = resolve(args.scale)
    rows = []
    try:
        for workload, setting in itertools.product(workloads, settings):
            row = measure(args, run, workload, setting)
            if row is not None:
                rows.append(row)
                write_csv(args.out, COLUMNS, rows)  # after each row: a run stopped by a time limit keeps its rows
    finally:
        AcceleratorState._reset_state(True)  # leave no bf16 state behind for a training run in this process
    write_csv(args.out, COLUMNS, rows)
    with atomic_path(args.out.with_suffix(".md")) as tmp:
        tmp.write_text(render_table(rows))
    log.info("wrote %d rows to %s and a table to %s", len(rows), args.out, args.out.with_suffix(".md"))
    if not args.no_agreement:
        agreement_path = args.out.with_name(f"{args.out.stem}_agreement.csv")
        write_csv(agreement_path, AGREEMENT_COLUMNS,
                  agreement_rows(args, run, min(setting.batch_size for setting in settings)))
        log.info("wrote the fp32-vs-bf16 agreement to %s", agreement_path)
