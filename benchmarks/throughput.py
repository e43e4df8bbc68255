"""Throughput of the suite's heavy work on one device: DiT training steps, sampling, VAE encode/decode, features.

    python -m benchmarks.throughput --scale paper --device cuda --batch-sizes 32,128 --precisions tf32,bf16 \\
        --compile off,on --out results/bench/throughput-h100.csv

Every row is one (workload, batch size, number format, switches) measurement of the pipeline's own code: the
training step is `tunebench.training.training_step` on the pre-training loss (DiT's ε-MSE + VLB) plus the EMA
update, on inputs already in model space (pre-extracted latents; `vae_encode` is the cost the VAE adds when it runs
in the loop); sampling is `tunebench.sampling.sample_batches` (per-sample seeds, the real schedulers, classifier-free
guidance as a doubled batch, the VAE decode included at paper scale) for DDPM-250 and DDIM-50 with guidance 1.5.
Weights are random unless --model/--vae are given (speed does not depend on them). FLOPs per image are counted
with torch's FlopCounterMode on the model itself (DiT-XL/2: 712 GFLOPs per training image, 237 per forward), not
6·N·tokens; MFU = images/s × FLOPs per image / the device's dense peak in that number format (known GPUs only).
The fp32-vs-bf16 agreement of the ε prediction, of DDIM-50 samples and of the VAE decode goes to a second CSV.
Warm-up iterations (and torch.compile's compilation) are not timed; their time is recorded. The CSV is rewritten
after each measurement, so a run stopped by a time limit keeps the rows it finished.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from benchmarks.throughput_settings import SDPA_KERNELS, WORKLOADS, Setting, parse_list, parse_switch
from tunebench.cli import run_cli, setup_logging
from tunebench.config import PRECISIONS, SCALE_NAMES, ConfigError


def main(argv: list[str] | None = None) -> None:
    """Parse flags, measure every combination, write the CSVs."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=SCALE_NAMES, default="mini",
                        help="model sizes: paper (DiT-XL/2 at 256 px, SD VAE), mini or smoke (pixel-space DiTs)")
    parser.add_argument("--model", default=None, help="a DiT save_pretrained folder (default: random weights)")
    parser.add_argument("--vae", default=None, help="an AutoencoderKL folder (default at paper scale: the SD VAE "
                                                    "architecture with random weights)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma list of {', '.join(WORKLOADS)}")
    parser.add_argument("--batch-sizes", default="32", help="comma list, e.g. 32,128")
    parser.add_argument("--precisions", default="tf32,bf16", help=f"comma list of {', '.join(PRECISIONS)}")
    parser.add_argument("--compile", default="off", help="off, on, or off,on: torch.compile the DiT")
    parser.add_argument("--grad-checkpointing", default="off", help="off, on, or off,on (training only)")
    parser.add_argument("--channels-last", default="off", help="off, on, or off,on (VAE and feature network)")
    parser.add_argument("--sdpa", default="auto", choices=["auto", *SDPA_KERNELS],
                        help="attention kernel: torch's choice, or one SDPA backend")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations (default 10)")
    parser.add_argument("--sample-repeats", type=int, default=1, help="timed full sampling runs (default 1)")
    parser.add_argument("--no-agreement", action="store_true", help="skip the fp32-vs-bf16 agreement rows")
    parser.add_argument("--out", type=Path, default=Path("results/bench/throughput.csv"),
                        help="CSV of the measurements; a Markdown table (.md) and the agreement rows "
                             "(*_agreement.csv) go beside it")
    args = parser.parse_args(argv)
    if min(args.warmup, args.iterations - 1, args.sample_repeats - 1) < 0:
        raise ConfigError("--iterations and --sample-repeats must be at least 1, --warmup at least 0")
    workloads = parse_list(args.workloads, "--workloads", WORKLOADS)
    batch_sizes = parse_list(args.batch_sizes, "--batch-sizes", kind=int)
    if min(batch_sizes) < 1:
        raise ConfigError(f"--batch-sizes {args.batch_sizes!r} must be positive")
    settings = [Setting(*values) for values in itertools.product(
        batch_sizes, parse_list(args.precisions, "--precisions", PRECISIONS), parse_switch(args.compile, "--compile"),
        parse_switch(args.grad_checkpointing, "--grad-checkpointing"),
        parse_switch(args.channels_last, "--channels-last"))]
    setup_logging()
    # torch, diffusers and accelerate load only after the flags are checked, so --help and flag errors answer at once
    from benchmarks.throughput_bench import run_benchmark
    from tunebench.speed import default_device

    args.device = args.device or default_device()
    run_benchmark(args, workloads, settings)


if __name__ == "__main__":
    run_cli(main)
