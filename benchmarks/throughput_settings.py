"""What the throughput benchmark can measure, as plain data, and the parsing of its comma-list flags: its CLI (and
`benchmarks.gpu_check`'s report) build on these without importing torch, which --help should not wait for
(`benchmarks.throughput_bench` takes them from here)."""

from __future__ import annotations

import dataclasses

from tunebench.config import ConfigError

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


def parse_list(text: str, flag: str, allowed=None, kind=str) -> list:
    """A comma list of a flag's values, checked against `allowed`."""
    try:
        values = [kind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} expects a comma list, got {text!r}") from None
    bad = [v for v in values if allowed is not None and v not in allowed]
    if not values or bad:
        raise ConfigError(f"{flag} {text!r}: choose from {', '.join(map(str, allowed or []))}")
    return values


def parse_switch(text: str, flag: str) -> list[bool]:
    """'off', 'on' or 'off,on' → the settings to measure."""
    return [value == "on" for value in parse_list(text, flag, ("off", "on"))]
