"""Quality of a DiT over training: fid_local/kid_local of DDIM samples and the denoising error eps_mse, at every
checkpoint of a `tunebench.pretrain` run (its EMA weights) or for one exported model folder.

    python -m benchmarks.dit_quality --run runs/mini/source --features runs/mini/features \\
        --out-csv runs/mini/source/quality.csv --out-json runs/mini/source/quality.json \\
        --figure runs/mini/source/quality.png
    python -m benchmarks.dit_quality --model runs/mini/uncond/model --labels null --features runs/mini/features \\
        --out-csv uncond-quality.csv --out-json uncond-quality.json

Samples come from seeds 0..n-1 (image i depends only on seed i), with labels i mod the dataset's classes (cycle) or
the null label (null: no guidance, the unconditional backbone). The CSV is rewritten after every checkpoint, and
steps already in it with the same protocol are skipped, so a killed job loses at most one step. A run keeps only its
newest train.checkpoints_keep checkpoints: measure while it trains, or keep them all, to get every step. See
docs/fid.md.
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path

from tunebench.cli import run_cli, setup_logging
from tunebench.config import ConfigError
from tunebench.dataset_registry import DATASETS, SPLITS
from tunebench.io import write_json

log = logging.getLogger("benchmarks.dit_quality")
MINI_DATASETS = [name for name, spec in DATASETS.items() if spec.role != "paper"]  # paper sets need a --root


def summary(rows: list[dict]) -> dict:
    """The last row (highest step) with the best step by fid_local (the earliest of equal ones)."""
    best = min(rows, key=lambda row: (row["fid_local"], row["step"]))
    return {**rows[-1], "best_step": best["step"], "best_fid_local": best["fid_local"]}


def write_summary(rows: list[dict], out_json: Path, figure: Path | None) -> None:
    """Write the summary JSON and, when asked, the figure of fid_local and eps_mse against step."""
    write_json(out_json, summary(rows))
    if figure is not None:
        # Imported here: matplotlib and pandas are needed only for the figure.
        import pandas as pd

        from benchmarks.figures import plot_columns_vs_step
        plot_columns_vs_step(pd.DataFrame(rows), ("fid_local", "eps_mse"), figure,
                             f"{rows[-1]['dataset']} {rows[-1]['split']}, {rows[-1]['n']} samples, "
                             f"{rows[-1]['steps']} DDIM steps, guidance {rows[-1]['guidance']}")


def main(argv: list[str] | None = None) -> None:
    """Parse flags, measure every checkpoint (or the model) not yet in the CSV, write the JSON and the figure."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dit_quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--run", type=Path, metavar="RUN_DIR",
                         help="run folder of `python -m tunebench.pretrain --out RUN_DIR`: every kept checkpoint")
    weights.add_argument("--model", type=Path, metavar="MODEL_DIR", help="exported model folder (e.g. RUN_DIR/model)")
    parser.add_argument("--features", type=Path, required=True, metavar="FEATURE_NET_DIR",
                        help="local feature-net folder (`python -m benchmarks.features`)")
    parser.add_argument("--dataset", default="source", choices=MINI_DATASETS,
                        help="reference statistics and denoising images (default source)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="dataset split (default test)")
    parser.add_argument("--n", type=int, default=500,
                        help="samples for fid_local/kid_local, seeds 0..n-1 (default 500)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps (default 50)")
    parser.add_argument("--guidance", type=float, default=1.5,
                        help="classifier-free guidance scale (default 1.5; not applied, and recorded as 1.0, with "
                             "--labels null)")
    parser.add_argument("--labels", default="cycle", choices=("cycle", "null"),
                        help="cycle: sample i gets class i mod the dataset's classes; null: the unconditional label")
    parser.add_argument("--denoise-images", type=int, default=256,
                        help="real images of eps_mse, evenly spaced over the split (default 256)")
    parser.add_argument("--out-csv", type=Path, required=True, metavar="CURVE.csv", help="one row per step")
    parser.add_argument("--out-json", type=Path, required=True, metavar="QUALITY.json",
                        help="the last row, best_step and best_fid_local")
    parser.add_argument("--figure", type=Path, default=None, metavar="CURVE.png",
                        help="also plot fid_local and eps_mse against step")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    for flag, value, least in (("--n", args.n, 2), ("--steps", args.steps, 1),
                               ("--denoise-images", args.denoise_images, 1)):
        if value < least:
            raise ConfigError(f"{flag} must be at least {least}, got {value}")
    setup_logging()
    # Here, not at the top: --help needs no torch.
    from benchmarks.dit_measure import NUMBER_COLUMNS, Protocol, denoising_set, measure
    from benchmarks.dit_sources import ModelSource, RunSource
    from benchmarks.fidelity import dataset_reference, make_extractor
    from benchmarks.quality_curve import measure_curve
    from tunebench.models import load_vae
    from tunebench.speed import default_device

    extractor, _ = make_extractor("local", args.features)  # checks the feature net before any model is loaded
    source = RunSource(args.run) if args.run else ModelSource(args.model)
    run, device = source.run, default_device()
    # Guidance changes nothing when every label is null (tunebench.sampling.guided_output): record what was applied.
    guidance = 1.0 if args.labels == "null" else args.guidance
    protocol = Protocol(args.n, args.steps, guidance, args.labels, args.dataset, args.split, extractor.extractor_id,
                        args.denoise_images)

    @functools.cache
    def inputs():
        """Reference statistics (in memory: seconds for a mini split), denoising images and VAE, made when the first
        step is measured, so that a re-run that finds every step measured computes none of them."""
        reference, _ = dataset_reference(args.dataset, args.split, extractor, run.data.resolution, None)
        vae = load_vae(run.model.vae).to(device) if run.model.vae else None
        return reference, denoising_set(protocol, run), vae

    def measure_weights(checkpoint, model):
        """The measures of one checkpoint's (or the model's) weights."""
        reference, denoising, vae = inputs()
        return measure(model.to(device), run, protocol, reference, extractor, denoising, device, vae)

    rows = measure_curve(source.checkpoints, measure_weights, protocol.columns(), args.out_csv,
                         protocol.curve_columns(), NUMBER_COLUMNS, headline=("fid_local", "eps_mse"),
                         progress=not args.no_progress)
    lost = source.lost_steps({row["step"] for row in rows})
    if lost:
        log.warning("steps %s were deleted (train.checkpoints_keep) before they were measured; %s lacks them",
                    lost, args.out_csv)
    write_summary(rows, args.out_json, args.figure)
    log.info("wrote %s (%d steps) and %s", args.out_csv, len(rows), args.out_json)


if __name__ == "__main__":
    run_cli(main)
