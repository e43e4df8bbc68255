"""Speed switches shared by training, sampling and the throughput benchmark, and the model-FLOP counts behind MFU.

Each switch changes how a result is computed (kernels, number formats, memory layout, recomputation), not what is
computed; the numerical effect of bf16 is measured by `benchmarks.throughput` (the fp32-vs-bf16 agreement rows).
The pipeline reads them from the config (`train.mixed_precision`, `train.tf32`, `train.gradient_checkpointing`,
`train.compile`, `sample.precision`, `sample.compile`), the benchmark from its flags.
"""

from __future__ import annotations

import contextlib

import torch
from torch.utils.flop_counter import FlopCounterMode

from tunebench.config import PRECISIONS, ConfigError
from tunebench.io import cpu_name

# Dense peak TFLOP/s (no sparsity) by device-name fragment, checked in order (NVIDIA H100 whitepaper: H100 SXM5 989.4
# bf16 / 494.7 TF32 / 66.9 fp32; the H200 has the H100 SXM's compute; PCIe H100 and A100 from their datasheets).
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H100 PCIe", {"bf16": 756.0, "tf32": 378.0, "fp32": 51.2}),
    ("H100", {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H200", {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("H800", {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    ("A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
)


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 tensor-core matmuls and convolutions on CUDA; CPUs have no TF32, so nothing changes."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


@contextlib.contextmanager
def precision_scope(precision: str, device: str | torch.device):
    """Run the body in a number format: strict fp32 (TF32 off), TF32 matmuls, or bf16 autocast (TF32 on for what
    autocast leaves in fp32). The global TF32 flags are restored afterwards, so a sampling probe inside a training
    run does not change the training's matmul mode."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    set_tf32(precision != "fp32")
    cast = (torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16) if precision == "bf16"
            else contextlib.nullcontext())
    try:
        with cast:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def require_compiler(key: str) -> None:
    """Raise a ConfigError naming `key` (the config key or flag that asked for compilation) when inductor finds no
    C++ compiler: `torch.compile` builds its kernels with one (CPU code, and the launchers of GPU kernels), and would
    otherwise fail only at the first call."""
    from torch._inductor.cpp_builder import get_cpp_compiler
    from torch._inductor.exc import InvalidCxxCompiler

    try:
        get_cpp_compiler()
    except InvalidCxxCompiler as err:
        raise ConfigError(f"'{key}' is on, but torch.compile needs a C++ compiler ({err}); install g++ or switch "
                          f"'{key}' off") from None


def prepare_model(model: torch.nn.Module, gradient_checkpointing: bool = False,
                  compile_model: bool = False, compile_key: str = "train.compile") -> torch.nn.Module:
    """Switch on per-block gradient checkpointing (diffusers models) and in-place `torch.compile`, and return `model`.

    `Module.compile` compiles the forward in place, so the state dict keeps its names (no `_orig_mod.` prefix) and
    checkpoints stay interchangeable with uncompiled runs. `compile_key` is the config key that asked for it, for
    the error when there is no compiler.
    """
    if gradient_checkpointing:
        if not getattr(model, "_supports_gradient_checkpointing", False):
            raise ConfigError(f"train.gradient_checkpointing: {type(model).__name__} does not support it; set it "
                              "false")
        model.enable_gradient_checkpointing()
    if compile_model:
        require_compiler(compile_key)
        model.compile()
    return model


def count_flops(work) -> int:
    """FLOPs of `work()` as torch's FlopCounterMode counts them (2 per multiply-add; matmuls, convs and attention)."""
    with FlopCounterMode(display=False) as counter:
        work()
    return counter.get_total_flops()


def peak_flops(device_name: str, precision: str) -> float | None:
    """The dense peak FLOP/s of a known GPU in a number format ('bf16', 'tf32', 'fp32'), or None when unknown."""
    for fragment, peaks in PEAK_TFLOPS:
        if fragment in device_name:
            return peaks[precision] * 1e12
    return None


def default_device() -> str:
    """The device a CLI runs on when its --device is not given: cuda if available, else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def compute_record() -> dict:
    """Where a result was computed, for its summary: floating-point results are reproducible bit for bit only with
    the same device, kernel set (torch's CPU capability: AVX2, AVX512, ...), thread count and torch version."""
    device = default_device()
    return {"device": device, "device_name": device_name(device),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__}


def device_name(device: str | torch.device) -> str:
    """What a measurement ran on: the GPU's name, or the CPU model and core count."""
    device = torch.device(device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
