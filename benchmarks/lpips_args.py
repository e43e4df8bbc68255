"""The --lpips-weights flag and the LPIPS names the CLIs and result rows show, as plain data: importing `lpips` imports
torch, which --help should not wait for (`benchmarks.lpips_metric` takes them from here)."""

from __future__ import annotations

import argparse

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's file name, which lpips would download
LPIPS_EXTRACTOR = "lpips-0.1.4-alex-v0.1"  # the `extractor` column of LPIPS result rows


def add_lpips_args(parser: argparse.ArgumentParser) -> None:
    """Add --lpips-weights, the one way every CLI takes the AlexNet trunk."""
    parser.add_argument("--lpips-weights", default=None, metavar="PATH",
                        help=f"torchvision AlexNet state dict ({ALEXNET_FILE}) for LPIPS; default "
                             f"$TORCH_HOME/hub/checkpoints/{ALEXNET_FILE}; LPIPS is skipped when neither exists")
