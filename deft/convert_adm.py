"""Convert OpenAI guided-diffusion's unconditional ImageNet-256 model (ADM, `256x256_diffusion_uncond.pt`) into the
diffusers `UNet2DModel` folder that DEFT's paper scale keeps frozen (`paper.deft_backbone`, or rule `convert_adm`
of the workflow from `paper.adm_checkpoint`).

    python -m deft.convert_adm --checkpoint /path/to/256x256_diffusion_uncond.pt --out /path/to/adm-uncond

The checkpoint is read weights-only (no pickled code runs); every one of its tensors must map to the model and every
tensor of the model must come from it, with the shapes of ADM's 256x256 uncond configuration, or the command stops
naming the missing, unexpected or mis-shaped keys. The folder holds the weights (safetensors, float32), config.json,
a model card and `tunebench.json` (the checkpoint's SHA-256). The mapping and where it departs from diffusers' own
conversion scripts: deft/adm_checkpoint.py. On the CPU: for the 552M-parameter model about 8 s of CPU time and
3.3 GB of memory at peak (measured on a file of the released layout), the rest is reading and writing 2.2 GB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import run_cli


def main(argv: list[str] | None = None) -> None:
    """Convert --checkpoint into the save_pretrained folder --out and print what was written."""
    parser = argparse.ArgumentParser(prog="python -m deft.convert_adm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path, metavar="FILE",
                        help="guided-diffusion's 256x256_diffusion_uncond.pt (a raw UNetModel state dict)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="the diffusers UNet2DModel folder to write (replaced if it exists)")
    model = parser.add_argument_group(
        "another ADM configuration (guided-diffusion's create_model flags; each defaults to 256x256_diffusion_uncond's "
        "value; scale-shift norm, res-block up/down sampling, learned σ, no classes and the legacy attention order "
        "are fixed)")
    model.add_argument("--image-size", type=int, help="image side (256)")
    model.add_argument("--num-channels", type=int, help="base channel count (256)")
    model.add_argument("--num-res-blocks", type=int, help="res-blocks per level (2)")
    model.add_argument("--channel-mult", type=int_list, help="channel multiplier per level (1,1,2,2,4,4)")
    model.add_argument("--attention-resolutions", type=int_list, help="image sides with attention (32,16,8)")
    model.add_argument("--num-head-channels", type=int, help="channels per attention head (64)")
    args = parser.parse_args(argv)
    # torch and diffusers: only after parsing, so --help answers at once
    from deft.adm_checkpoint import AdmConfig, convert_checkpoint
    from tunebench.models import read_sidecar

    flags = ("image_size", "num_channels", "num_res_blocks", "channel_mult", "attention_resolutions",
             "num_head_channels")
    adm = AdmConfig(**{flag: getattr(args, flag) for flag in flags if getattr(args, flag) is not None})
    folder = convert_checkpoint(args.checkpoint, args.out, adm)
    source = read_sidecar(folder)["converted_from"]
    print(f"wrote {folder}: UNet2DModel from {args.checkpoint} (sha256 {source['sha256']}); "
          "output channels 0-2 are ε, 3-5 the variance interpolation v")


def int_list(text: str) -> tuple[int, ...]:
    """'32,16,8' → (32, 16, 8), for argparse."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


if __name__ == "__main__":
    run_cli(main)
