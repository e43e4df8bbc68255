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
import dataclasses
import logging
import time
from pathlib import Path

import torch

from deft.amortised_model import amortised_sample, load_conditional
from deft.backbone import load_backbone
from deft.baselines import BASELINES, TASKS, config_for, run_baseline, unsupported_reason
from deft.cli import add_deft_args, resolve_deft
from deft.config import DeftConfig
from deft.data import test_set, to_model_range
from deft.head import HTransformHead
from deft.sampler import deft_sample
from deft.operators.tasks import build_operator
from tunebench.cli import print_config, run_cli, setup_logging
from tunebench.config import ConfigError, to_dict
from tunebench.io import git_commit, input_fingerprint, save_npz, to_uint8, write_json
from tunebench.models import load_pretrained, read_sidecar
from tunebench.noise import SampleNoise
from tunebench.schedule import Schedule

log = logging.getLogger("deft.reconstruct")
METHODS = ("deft", "amortised", *BASELINES)
TRAINED = {"deft": "--head", "amortised": "--conditional"}  # methods that sample from a model trained here
MEASUREMENT_SEED_OFFSET = 1 << 32  # measurement noise streams never coincide with sampler noise streams


def measurements(run: DeftConfig, x0: torch.Tensor, ids: torch.Tensor):
    """The operator for test images `ids` and their measurements y (noise of image k from k and task.seed only)."""
    op = build_operator(run.task, ids.to(x0.device), x0.shape[-1], x0.shape[1])
    generators = [torch.Generator().manual_seed(MEASUREMENT_SEED_OFFSET + run.task.seed * (1 << 24) + int(k))
                  for k in ids]
    return op, op.measure(x0, generators)


def load_head(folder: str | Path) -> HTransformHead:
    """A trained head folder (written by `deft.train`), frozen for sampling."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"--head {folder} is not a head folder (no config.json); pass OUT/head of `deft.train`")
    return load_pretrained(HTransformHead, folder).eval().requires_grad_(False)


def check_head(head_folder: Path, run: DeftConfig) -> None:
    """Refuse a head trained for another operator or backbone (its sidecar records both)."""
    sidecar = read_sidecar(head_folder)
    if not sidecar:
        return
    trained = sidecar["run_config"]
    if trained["task"]["operator"] != run.task.operator:
        raise ConfigError(f"the head in {head_folder} was trained with task.operator={trained['task']['operator']!r}, "
                          f"not {run.task.operator!r}")
    if Path(trained["model"]["pretrained"]).resolve() != Path(run.model.pretrained).resolve():
        raise ConfigError(f"the head in {head_folder} was trained on the backbone {trained['model']['pretrained']}, "
                          f"not {run.model.pretrained}")


def reconstruct(run: DeftConfig, method: str, trained: Path | None, progress: bool):
    """(reconstructions in [-1, 1], truth in [-1, 1], cost statistics) for the run's test images.

    `trained` is the head folder (DEFT) or the conditional model folder (amortised)."""
    backbone = load_backbone(run.model.pretrained, chunk=run.sample.compute_chunk)
    test = test_set(run)
    schedule = Schedule.linear(run.diffusion)
    head = load_head(trained) if method == "deft" else None
    conditional = load_conditional(trained).to(backbone.device) if method == "amortised" else None
    recon, stats, seconds = [], {}, 0.0
    for start in range(0, len(test), run.sample.batch_size):
        ids = torch.arange(start, min(start + run.sample.batch_size, len(test)))
        x0 = to_model_range(test.images[ids]).to(backbone.device)
        op, y = measurements(run, x0, ids)
        reason = None if method in TRAINED else unsupported_reason(method, op)
        if reason:
            raise ConfigError(f"{method} cannot solve task '{run.task.name}': {reason}")
        noise = SampleNoise(ids.tolist(), backbone.device)
        started = time.perf_counter()
        if method == "deft":
            out, stats = deft_sample(head, backbone, schedule, run, op, y, noise, progress)
        elif method == "amortised":
            out, stats = amortised_sample(conditional, schedule, run, op, y, noise, progress)
        else:
            # Tasks without published step sizes (e.g. inpaint_box) run with the method's defaults.
            steps = {"steps": run.baselines.steps} if run.baselines.steps else {}
            config = config_for(method, run.task.name if run.task.name in TASKS else None, **steps)
            out, stats = run_baseline(method, backbone, schedule, op, y, noise, config=config, progress=progress)
            stats = {**stats, "sampler": method, "method_config": dataclasses.asdict(config)}
        seconds += time.perf_counter() - started
        recon.append(out.cpu())
    truth = to_model_range(test.images)
    return torch.cat(recon), truth, {**stats, "sample_seconds": round(seconds, 2), "n_images": len(test),
                                     "comparable": getattr(op, "comparable", True)}


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
