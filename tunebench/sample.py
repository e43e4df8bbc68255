"""Sample images from an exported DiT: one PNG per seed, a `.npz` of all of them, the protocol, an optional grid.

    python -m tunebench.sample --model runs/mini/source/model --out runs/mini/source/samples --seeds 0-103 \\
        --labels cycle --grid runs/mini/source/grid.png

Image i depends only on seed i (and the model and protocol). Finished PNGs are kept: a killed run started again
with the same protocol only makes the missing ones.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
import torch
from accelerate import PartialState
from PIL import Image
from torchvision.utils import make_grid

from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import ConfigError, to_dict
from tunebench.io import (atomic_path, git_commit, read_json, remove_temporaries, save_npz, save_png, to_uint8,
                          write_json)
from tunebench.models import load_dit, load_vae, null_class, read_sidecar
from tunebench.sampling import labels_for_seeds, sample_batches
from tunebench.speed import prepare_model

log = logging.getLogger("tunebench.sample")


def parse_seeds(text: str) -> list[int]:
    """'0-99' → 0..99, '1,5,7' → [1, 5, 7], and mixtures like '0-3,10'."""
    seeds = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ConfigError(f"--seeds expects ranges like 0-99 or lists like 1,5,7, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r} must name distinct non-negative seeds")
    return seeds


def save_grid(path: Path, images: np.ndarray, nrow: int) -> None:
    """Tile uint8 N×H×W×C images into one PNG, atomically."""
    grid = make_grid(torch.from_numpy(images).permute(0, 3, 1, 2), nrow=nrow, padding=1, pad_value=255)
    with atomic_path(path) as tmp:
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(tmp, format="PNG")


def main(argv: list[str] | None = None) -> None:
    """Parse flags and write the samples."""
    parser = argparse.ArgumentParser(prog="python -m tunebench.sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.set_defaults(scale=None)
    parser.add_argument("--model", required=True, help="exported DiT folder (save_pretrained) or cached hub id")
    parser.add_argument("--vae", default=None, help="AutoencoderKL folder for latent models (default: the one the "
                                                    "model was trained with)")
    parser.add_argument("--out", required=True, type=Path, help="folder for {seed:06d}.png, samples.npz, protocol.json")
    parser.add_argument("--seeds", default="0-63", help="seeds, e.g. 0-9999 (one image per seed)")
    parser.add_argument("--labels", default="uniform",
                        help="uniform (drawn from each seed), cycle (seed index mod classes), null, or ids like 0,3")
    parser.add_argument("--classes", type=int, default=None,
                        help="number of classes to draw from (default: the training dataset's class count)")
    parser.add_argument("--grid", type=Path, default=None, help="also write all images tiled into this PNG")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    sidecar = read_sidecar(args.model) if Path(args.model).is_dir() else {}
    trained = sidecar.get("run_config", {})
    args.scale = args.scale or trained.get("scale", "paper")
    run = config_from_args(args)
    if args.dry_run:
        print_config(run)
        return
    setup_logging()
    seeds = parse_seeds(args.seeds)
    # Under `accelerate launch` each process makes every num_processes-th missing image on its own GPU; images
    # depend only on their seed, so the set is the same for any number of processes.
    state = PartialState(cpu=args.device == "cpu")
    device = state.device if state.num_processes > 1 else torch.device(args.device)
    model = prepare_model(load_dit(args.model).to(device), compile_model=run.sample.compile)
    vae_path = args.vae or trained.get("model", {}).get("vae") or run.model.vae
    vae = load_vae(vae_path).to(device) if vae_path else None
    null = null_class(model)
    classes = args.classes or len(sidecar.get("class_names", [])) or null
    labels = labels_for_seeds(seeds, args.labels, classes, null)
    protocol = {"model": str(args.model), "model_scale": trained.get("scale"), "model_steps": sidecar.get("steps"),
                "weights": sidecar.get("weights"), "vae": vae_path, "sample": to_dict(run.sample),
                "diffusion": to_dict(run.diffusion), "labels": args.labels, "classes": classes,
                "seeds": args.seeds, "n_samples": len(seeds)}
    protocol_path = args.out / "protocol.json"
    if protocol_path.is_file() and read_json(protocol_path).get("protocol") != protocol:
        raise ConfigError(f"{args.out} holds samples made with another protocol ({protocol_path}); "
                          "use a new --out folder or delete the old samples")
    if state.is_main_process:
        for leftover in remove_temporaries(args.out):
            log.info("removed %s, left half-written by an interrupted job", leftover)
        write_json(protocol_path, {"protocol": protocol, "git_commit": git_commit()})
    state.wait_for_everyone()  # no process writes an image before the leftovers are gone
    todo = [(s, y) for s, y in zip(seeds, labels) if not (args.out / f"{s:06d}.png").is_file()]
    log.info("%d of %d images to make (%s, %d steps, guidance %.2f)", len(todo), len(seeds), run.sample.sampler,
             run.sample.steps, run.sample.guidance_scale)
    mine = todo[state.process_index::state.num_processes]
    if mine:
        batches = sample_batches(model, run.diffusion, run.sample, [s for s, _ in mine], [y for _, y in mine],
                                 vae=vae, vae_scaling=run.model.vae_scaling, device=device,
                                 progress=not args.no_progress and state.is_local_main_process)
        for batch_seeds, images in batches:
            for seed, image in zip(batch_seeds, to_uint8(images)):
                save_png(args.out / f"{seed:06d}.png", image)
    state.wait_for_everyone()
    if not state.is_main_process:
        return
    images = np.stack([np.array(Image.open(args.out / f"{s:06d}.png")) for s in seeds])
    if images.ndim == 3:
        images = images[..., None]
    save_npz(args.out / "samples.npz", images=images, labels=np.array(labels), seeds=np.array(seeds))
    if args.grid:
        nrow = classes if args.labels == "cycle" else math.ceil(math.sqrt(len(seeds)))
        save_grid(args.grid, images, nrow)
    log.info("wrote %d images to %s", len(seeds), args.out)


if __name__ == "__main__":
    run_cli(main)
