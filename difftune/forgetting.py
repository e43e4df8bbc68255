"""Chain of forgetting: splice the fine-tuned and the pre-trained model inside one reverse chain at step t0.

    python -m difftune.forgetting --finetuned runs/mini/finetune/mnist5k/full_ft/model \\
        --pretrained runs/mini/source/model --ref resources/fid-refs/mnist5k-train-local-XXXX-32px.npz \\
        --t0 0,200,400,600,800,1000 --seeds 0-499 --out results/mini/forgetting.csv

`finetuned_then_pretrained`: the fine-tuned model (downstream labels) denoises for t >= t0 and the pre-trained model
(null label: its classes are the source domain's) finishes below t0. `pretrained_then_finetuned` is the mirror
control. t0 = 0 is the fine-tuned (resp. pre-trained) model alone. Every point uses the same seeds, so only the splice
point changes (docs/difftune.md; the paper's exact protocol is not public: this is the reconstruction).
Writes tidy rows (t0, direction, dataset, metric, value, protocol columns) for `difftune.report figure forgetting`,
and with --images-out the first images of every point for `difftune.report figure splice`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from tunebench.cli import add_config_args, config_from_args, print_config, run_cli, setup_logging
from tunebench.config import ConfigError, to_dict

if TYPE_CHECKING:
    import torch

log = logging.getLogger("difftune.forgetting")
DIRECTIONS = ("finetuned_then_pretrained", "pretrained_then_finetuned")


def parse_t0(text: str, num_timesteps: int) -> list[int]:
    """'0,200,1000' → sorted distinct switch steps in [0, T]."""
    try:
        values = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise ConfigError(f"--t0 expects comma-separated integers, got {text!r}") from None
    if values[0] < 0 or values[-1] > num_timesteps:
        raise ConfigError(f"--t0 values must lie in [0, {num_timesteps}], got {values}")
    return values


def spliced_images(first, second, first_labels, second_labels, t0: int, run, seeds, progress: bool,
                   vae=None) -> torch.Tensor:
    """uint8 N×3×H×W images: `first` denoises for t >= t0, `second` below t0 (same seeds for every t0)."""
    import numpy as np
    import torch

    from benchmarks.fidelity import as_rgb_uint8
    from tunebench.io import to_uint8
    from tunebench.sampling import Handoff, sample_batches

    handoff = Handoff(t0, second, second_labels)
    batches = sample_batches(first, run.diffusion, run.sample, seeds, first_labels, progress=progress,
                             handoff=handoff, vae=vae, vae_scaling=run.model.vae_scaling)
    images = np.concatenate([to_uint8(x) for _, x in batches])  # N×H×W×C
    return as_rgb_uint8(torch.from_numpy(images).permute(0, 3, 1, 2))


def main(argv: list[str] | None = None) -> None:
    """Parse flags, sample every (direction, t0), score, write the CSV."""
    parser = argparse.ArgumentParser(prog="python -m difftune.forgetting", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser)
    parser.set_defaults(scale=None)
    parser.add_argument("--finetuned", required=True, help="fine-tuned model folder (difftune.finetune OUT/model)")
    parser.add_argument("--pretrained", required=True, help="pre-trained model folder")
    parser.add_argument("--ref", required=True, type=Path,
                        help="reference statistics of the target dataset (benchmarks.fid ref; local or Inception)")
    parser.add_argument("--features", default=None, help="feature-net folder (default: the one in the reference)")
    parser.add_argument("--inception-weights", default=None, metavar="PATH",
                        help="local Inception weights, for an Inception --ref (default: the torch-fidelity cache)")
    parser.add_argument("--t0", default="0,200,400,600,800,1000", help="switch steps (DiT indexing, 0 = data end)")
    parser.add_argument("--seeds", default="0-499", help="seeds, one image each, shared by every point")
    parser.add_argument("--directions", default=",".join(DIRECTIONS), help=f"comma list of {DIRECTIONS}")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write (replaced atomically)")
    parser.add_argument("--images-out", type=Path, default=None,
                        help="also save the first --images images of every (direction, t0) to this .npz (the "
                             "report's splice picture: images, direction, t0, seeds)")
    parser.add_argument("--images", type=int, default=16, help="images per (direction, t0) for --images-out")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    # Here, not at the top: --help needs no torch.
    import numpy as np
    import pandas as pd

    from benchmarks.fidelity import compare, load_reference, make_extractor
    from tunebench.io import atomic_path, git_commit, save_npz
    from tunebench.models import load_dit, load_vae, null_class, read_sidecar
    from tunebench.sample_folder import parse_seeds
    from tunebench.sampling import labels_for_seeds

    sidecar = read_sidecar(args.finetuned)
    args.scale = args.scale or sidecar.get("run_config", {}).get("scale", "paper")
    run = config_from_args(args)
    if args.dry_run:
        print_config(run)
        return
    directions = [d for d in args.directions.split(",") if d]
    unknown = sorted(set(directions) - set(DIRECTIONS))
    if unknown:
        raise ConfigError(f"--directions: unknown {unknown}; choose from {list(DIRECTIONS)}")
    setup_logging()
    finetuned, pretrained = load_dit(args.finetuned), load_dit(args.pretrained)
    vae_path = sidecar.get("run_config", {}).get("model", {}).get("vae")
    vae = load_vae(vae_path) if vae_path else None
    ref = load_reference(args.ref)
    kind = ref.meta["extractor_kind"]
    extractor, reason = make_extractor(kind, args.features or ref.meta["weights_path"], args.inception_weights)
    if extractor is None:
        raise ConfigError(f"cannot score against the Inception reference {args.ref}: {reason}")
    seeds = parse_seeds(args.seeds)
    classes = len(sidecar.get("class_names", [])) or null_class(finetuned)
    target_labels = labels_for_seeds(seeds, "uniform", classes, null_class(finetuned))
    null_labels = [null_class(pretrained)] * len(seeds)
    rows, shown = [], []
    for direction in directions:
        for t0 in parse_t0(args.t0, run.diffusion.num_train_timesteps):
            if direction == DIRECTIONS[0]:
                images = spliced_images(finetuned, pretrained, target_labels, null_labels, t0, run, seeds,
                                        not args.no_progress, vae)
            else:
                images = spliced_images(pretrained, finetuned, null_labels, target_labels, t0, run, seeds,
                                        not args.no_progress, vae)
            shown.append((direction, t0, images[:args.images].permute(0, 2, 3, 1).numpy()))
            scores = compare(images, ref, extractor)
            log.info("%s t0=%d: fid_%s %.3f", direction, t0, kind, scores["fid"])
            for metric, value in ((f"fid_{kind}", scores["fid"]), (f"kid_{kind}", scores["kid_mean"])):
                rows.append({"t0": t0, "direction": direction, "dataset": sidecar.get("dataset", ""),
                             "metric": metric, "value": value, "n_samples": len(seeds), "seeds": args.seeds,
                             "finetuned": args.finetuned, "pretrained": args.pretrained,
                             "method": sidecar.get("method", ""), "sampler": run.sample.sampler,
                             "steps": run.sample.steps, "guidance": run.sample.guidance_scale,
                             "extractor": extractor.extractor_id, "reference": args.ref.name,
                             "git_commit": git_commit()})
    with atomic_path(args.out) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    if args.images_out:
        save_npz(args.images_out, images=np.stack([images for _, _, images in shown]),
                 direction=np.array([direction for direction, _, _ in shown]),
                 t0=np.array([t0 for _, t0, _ in shown]), seeds=np.array(seeds[:args.images]))
    log.info("wrote %d rows to %s (sampling %s)", len(rows), args.out, to_dict(run.sample))


if __name__ == "__main__":
    run_cli(main)
