"""What the throughput benchmark can measure, as plain data: its CLI builds the parser from these without importing
torch, which --help should not wait for (`benchmarks.throughput_bench` takes them from here)."""

from __future__ import annotations

import dataclasses

WORKLOADS = ("train", "sample_ddpm250_cfg", "sample_ddim50_cfg", "vae_encode", "vae_decode", "features")
# --sdpa's choices, each naming its torch.nn.attention.SDPBackend member (looked up when a kernel is restricted)
SDPA_KERNELS = {"flash": "FLASH_ATTENTION", "efficient": "EFFICIENT_ATTENTION", "math": "MATH",
                "cudnn": "CUDNN_ATTENTION"}


@dataclasses.dataclass(frozen=True)
class Setting:
    """The switches of one measurement."""

    batch_size: int
    precision: str
    compile: bool
    gradient_checkpointing: bool
    channels_last: bool
