"""Solve one inverse problem on the test images with DEFT, the amortised model or a baseline, timing it and counting
network passes.

    python -m deft.reconstruct --scale mini --backbone runs/mini/uncond/model --task inpaint --method deft \\
        --head runs/mini/deft/inpaint/train/head --out runs/mini/deft/inpaint/deft
    python -m deft.reconstruct --scale mini --backbone runs/mini/uncond/model --task sr4 --method dps --out DIR
    python -m deft.reconstruct --scale mini --backbone runs/mini/uncond/model --task sr4 --method amortised \\
        --conditional runs/mini/deft/sr4/amortised-train/model --out DIR

Every method sees the same test images, operators and measurements: image k's mask and measurement noise come from
k (and task.seed) only, and its sampler noise from seed k. Writes OUT/recon.npz and OUT/truth.npz (uint8 N×H×W×C
'images', in test order) and OUT/summary.json: the protocol and the cost (network evaluations and backbone
backprops per image, wall seconds of sampling).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from deft.cli import add_deft_args, resolve_deft
from deft.method_names import METHODS, TRAINED
from tunebench.cli import print_config, run_cli, setup_logging
from tunebench.config import ConfigError

log = logging.getLogger("deft.reconstruct")


def main(argv: list[str] | None = None) -> None:
    """Parse flags, reconstruct the test images, save them with the cost summary."""
    parser = argparse.ArgumentParser(prog="python -m deft.reconstruct", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_deft_args(parser)
    parser.add_argument("--method", required=True, choices=METHODS, help="deft or a baseline")
    parser.add_argument("--head", type=Path, help="trained head folder (OUT/head of deft.train); --method deft only")
    parser.add_argument("--conditional", type=Path,
                        help="trained conditional model (OUT/model of deft.amortised); --method amortised only")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    run = resolve_deft(args)
    if args.dry_run:
        print_config(run)
        return
    for method, flag in TRAINED.items():
        if (args.method == method) != (getattr(args, flag[2:]) is not None):
            raise ConfigError(f"{flag} is required with --method {method} and not allowed otherwise")
    setup_logging(args.out)
    # the models and samplers import torch and diffusers: only once the flags ask for a reconstruction
    from deft.reconstruction import check_head, reconstruct
    from tunebench.config import to_dict
    from tunebench.io import git_commit, input_fingerprint, save_npz, to_uint8, write_json

    if args.head:
        check_head(args.head, run)
    trained = args.head or args.conditional
    recon, truth, stats = reconstruct(run, args.method, trained, not args.no_progress)
    save_npz(args.out / "truth.npz", images=to_uint8(truth))
    save_npz(args.out / "recon.npz", images=to_uint8(recon))
    summary = {"method": args.method, "task": run.task.name, "operator": run.task.operator,
               "sigma_y": run.task.sigma_y, "backbone": run.model.pretrained, "scale": run.scale,
               "trained_model": str(trained) if trained else None,
               "backbone_fingerprint": input_fingerprint(run.model.pretrained)[:16], "seeds": f"0-{len(recon) - 1}",
               "git_commit": git_commit(), "run_config": to_dict(run), **stats}
    write_json(args.out / "summary.json", summary)
    log.info("%s on %s: %d images in %.1f s", args.method, run.task.name, len(recon), stats["sample_seconds"])


if __name__ == "__main__":
    run_cli(main)
