"""Pre-sample the retention set ("knowledge bank") that Diff-Tuning replays while fine-tuning.

    python -m difftune.retention --model runs/mini/source/model --out runs/mini/retention --n 2000
    python -m difftune.retention --kind source --dataset source --out runs/mini/retention-real --n 2000

`generated` (the method): N class-conditional samples of the pre-trained model, labels uniform over its source
classes, classifier-free guidance, written by `tunebench.sample` (PNGs, samples.npz, protocol.json; a killed run
resumes). `source`: N real source-domain images instead (the paper's ablation). Either way OUT/manifest.json says
what the set is; fine-tuning reads OUT/samples.npz and never re-samples.

Paper default (an assumption: the official repo ships no generation script, docs/difftune.md): DiT-XL/2,
250 DDPM steps, guidance 1.5, labels uniform over the 1000 ImageNet classes. The sampler is the scale file's
`settings.retention` over `settings.core` (difftune.config.RetentionRunConfig); mini: 2000 images, DDIM-50
(η = 0), guidance 1.5 (docs/workflow.md "Levers measured for the mini budget").
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from difftune.config import RetentionRunConfig
from tunebench.cli import run_cli, setup_logging
from tunebench.config import SCALE_NAMES, ConfigError, load_yaml, resolve, settings_file

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger("difftune.retention")
KINDS = ("generated", "source")


def scale_retention_n(scale: str) -> int:
    """The retention set's size at `scale`: `difftune.retention_n` of its workflow config, the DAG's own value."""
    path = settings_file(scale)
    n = load_yaml(path).get("difftune", {}).get("retention_n")
    if not isinstance(n, int) or isinstance(n, bool):
        raise ConfigError(f"config file {path}: 'difftune.retention_n' is {n!r}; give the set's size as an integer")
    return n


def real_source_images(dataset: str, n: int, resolution: int, seed: int, root: str | None = None) -> np.ndarray:
    """N seeded draws (without replacement) from a dataset's train split, as uint8 N×H×W×C."""
    import torch

    from tunebench.datasets import load_dataset

    data = load_dataset(dataset, "train", resolution, 3, root)
    if n > len(data):
        raise ConfigError(f"--n {n} is more than the {len(data)} images of {dataset}/train")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return torch.stack([data[int(i)][0] for i in order]).permute(0, 2, 3, 1).numpy()


def main(argv: list[str] | None = None) -> None:
    """Parse flags and build the set."""
    parser = argparse.ArgumentParser(prog="python -m difftune.retention", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="folder for the set and its manifest.json")
    parser.add_argument("--kind", choices=KINDS, default="generated",
                        help="generated: samples of the pre-trained model (Diff-Tuning); source: real images")
    parser.add_argument("--model", help="pre-trained model folder (for --kind generated)")
    parser.add_argument("--dataset", default="source", help="source-domain dataset (for --kind source)")
    parser.add_argument("--root", default=None, help="folder of a paper-scale --dataset (ImageFolder layout)")
    parser.add_argument("--scale", choices=SCALE_NAMES, default="mini", help="sets the default --n and resolution")
    parser.add_argument("--n", type=int, default=None,
                        help="number of images (default: difftune.retention_n of the scale's workflow config)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (image i uses seed+i)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="sampling overrides passed to tunebench.sample, e.g. sample.guidance_scale=4")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else scale_retention_n(args.scale)
    if n <= 0:
        raise ConfigError(f"--n must be positive, got {n}")
    # Here, not at the top: --help needs no torch.
    from difftune.retention_set import MANIFEST
    from tunebench.io import git_commit, is_main_process, read_json, save_npz, write_json
    from tunebench.sample_folder import sample_config, write_samples

    setup_logging()
    if args.kind == "generated":
        if not args.model:
            raise ConfigError("--kind generated needs --model (the pre-trained model folder)")
        run, sidecar = sample_config(args.model, overrides=args.overrides, cls=RetentionRunConfig)
        write_samples(run, sidecar, args.model, args.out, f"{args.seed}-{args.seed + n - 1}", "uniform",
                      progress=not args.no_progress)
        protocol = read_json(args.out / "protocol.json")["protocol"]
        manifest = {"kind": "generated", "n": n, "labels_used_in_training": "null", "protocol": protocol}
    else:
        resolution = resolve(args.scale).data.resolution
        images = real_source_images(args.dataset, n, resolution, args.seed, args.root)
        save_npz(args.out / "samples.npz", images=images)
        manifest = {"kind": "source", "n": n, "dataset": args.dataset, "split": "train", "resolution": resolution,
                    "seed": args.seed, "labels_used_in_training": "null"}
    if is_main_process():  # under accelerate launch every rank sampled its share; one writes the manifest
        write_json(args.out / MANIFEST, {**manifest, "git_commit": git_commit()})
    log.info("retention set of %d %s images in %s", n, args.kind, args.out)


if __name__ == "__main__":
    run_cli(main)
