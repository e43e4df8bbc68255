"""FID and KID through torch-fidelity against `.npz` reference statistics, with the local feature net or Inception.

    python -m benchmarks.fid ref --dataset mnist5k --split train --extractor local \\
        --features resources/features/local-32 --resolution 32 --out-dir resources/fid-refs
    python -m benchmarks.fid calc --images runs/mini/x/samples --ref resources/fid-refs/REF.npz \\
        [--results results/mini/difftune.csv --experiment E --method M --seed 0] [--json out.json] \\
        [--jackknife-groups G]

Local features give `fid_local`/`kid_local`, NOT comparable to the papers' Inception FID; `fid_inception`/
`kid_inception` need a local Inception weights file and are skipped (never downloaded) without one. The fid rows
carry a 95% jackknife interval over the generated images (`benchmarks.fid_interval`; by default for the local
features only). See docs/fid.md.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from benchmarks.fid_defaults import BATCH_SIZE, FID_JACKKNIFE_GROUPS, INCEPTION_FILE
from tunebench.cli import run_cli
from tunebench.dataset_registry import DATASETS, FOLDER_LAYOUT, SPLITS
from tunebench.io import git_commit, write_json


def provenance(args: argparse.Namespace, protocol: dict, n_images: int, dataset: str) -> dict:
    """Result-row columns from the flags, falling back to the samples' protocol.json for model and sampling."""
    sample = protocol.get("sample", {})
    from_protocol = {"model": protocol.get("model", ""), "scale": protocol.get("model_scale") or "",
                     "sampler": sample.get("sampler", ""), "steps": sample.get("steps"),
                     "guidance": sample.get("guidance_scale")}
    row = {key: getattr(args, key) if getattr(args, key) not in (None, "") else value
           for key, value in from_protocol.items()}
    return {**row, "experiment": args.experiment, "method": args.method, "dataset": args.dataset or dataset,
            "seed": args.seed, "n_samples": n_images, "config_hash": args.config_hash, "git_commit": git_commit()}


#################################################################################
#                                 Command Line                                  #
#################################################################################


def run_ref(args: argparse.Namespace) -> None:
    """`ref`: compute (or check the cached) reference statistics of one dataset split."""
    # Imported here, as in run_calc: torch and torch-fidelity take seconds to import, and --help needs neither.
    from benchmarks.fidelity import FidError, dataset_reference, make_extractor

    extractor, reason = make_extractor(args.extractor, args.features, args.inception_weights)
    if extractor is None:
        raise FidError(f"cannot compute an Inception reference: {reason}")
    ref, path = dataset_reference(args.dataset, args.split, extractor, args.resolution, args.out_dir, args.batch_size,
                                  args.root)
    print(f"{path}: {ref.meta['n_images']} images, extractor {ref.meta['extractor']}")


def run_calc(args: argparse.Namespace) -> None:
    """`calc`: FID/KID of generated images against references; print them, optionally add result rows and JSON."""
    from benchmarks.fidelity import FidError, read_images, score_images, score_rows, take_images

    if args.jackknife_groups is not None and args.jackknife_groups < 0:
        raise FidError(f"--jackknife-groups {args.jackknife_groups}: the number of groups must be 0 (no interval) "
                       "or 2 or more")
    if args.results and not (args.experiment and args.method):
        raise FidError("--results needs --experiment and --method (the rows' key columns)")
    images, protocol = read_images(args.images)
    num = args.num if args.num is not None else protocol.get("n_samples")
    images = take_images(images, str(args.images), num, args.min_images)
    scores = score_images(images, args.ref, args.features, args.inception_weights, args.inception, args.batch_size,
                          args.jackknife_groups)
    base = provenance(args, protocol, len(images), next(s.dataset for s in scores if s.dataset))
    rows = [row for s in scores for row in score_rows(s, base)]
    for row in rows:
        print(f"{row['metric']}\t{row['value'] if row['value'] is not None else 'skipped'}\t{row['extractor']}")
    if args.results:
        from benchmarks.results import append_rows  # here: only `calc --results` needs pandas
        append_rows(args.results, rows)
    if args.json:
        write_json(args.json, {"images": str(args.images), "scores": [asdict(s) for s in scores], "rows": rows})


def main(argv: list[str] | None = None) -> None:
    """Parse the `ref` or `calc` command and run it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    ref = commands.add_parser("ref", help="compute reference statistics of a dataset split")
    ref.add_argument("--dataset", required=True, choices=list(DATASETS))
    ref.add_argument("--root", default=None, help=f"folder of a paper-scale --dataset, laid out as {FOLDER_LAYOUT}")
    ref.add_argument("--split", default="train", choices=SPLITS, help="dataset split (default train)")
    ref.add_argument("--extractor", default="local", choices=("local", "inception"), help="feature network")
    ref.add_argument("--resolution", type=int, default=32, help="image side the dataset is built at (default 32)")
    ref.add_argument("--out-dir", type=Path, default=Path("resources/fid-refs"), help="folder for the .npz")
    calc = commands.add_parser("calc", help="FID/KID of generated images against reference statistics")
    calc.add_argument("--images", type=Path, required=True,
                      help="folder of PNGs or .npz with uint8 N×H×W×C 'images'")
    calc.add_argument("--ref", type=Path, action="append", required=True, help="reference .npz; one per extractor")
    calc.add_argument("--inception", action="store_true",
                      help="also report fid_inception/kid_inception (rows are skipped when no weights exist)")
    calc.add_argument("--num", type=int, default=None,
                      help="images to use (the first N by name); default: protocol.json's n_samples, else all")
    calc.add_argument("--min-images", type=int, default=None, help="fewer images is an error (default: --num)")
    calc.add_argument("--jackknife-groups", type=int, default=None, metavar="G",
                      help="groups of FID's 95%% jackknife interval over the images, for every extractor "
                           "(0 = none); default per extractor: "
                           + ", ".join(f"{kind} {n}" for kind, n in FID_JACKKNIFE_GROUPS.items()))
    calc.add_argument("--json", type=Path, default=None, help="also write the scores and rows to this JSON file")
    calc.add_argument("--results", type=Path, default=None, help="results CSV to add the rows to (made if new)")
    calc.add_argument("--experiment", default="", help="the rows' experiment column (required with --results)")
    calc.add_argument("--method", default="", help="the rows' method column (required with --results)")
    calc.add_argument("--dataset", default="", help="the rows' dataset column (default: the reference's dataset)")
    calc.add_argument("--seed", type=int, default=0, help="the first sampling seed of the images (default 0)")
    for column in ("scale", "model", "sampler"):
        calc.add_argument(f"--{column}", default=None,
                          help=f"provenance: the rows' {column} column (default: from protocol.json when present)")
    calc.add_argument("--config-hash", default="", help="provenance: the rows' config_hash column")
    calc.add_argument("--steps", type=int, default=None, help="provenance: sampler steps (default: protocol.json)")
    calc.add_argument("--guidance", type=float, default=None,
                      help="provenance: guidance scale (default: protocol.json)")
    for sub in (ref, calc):
        sub.add_argument("--features", default=None, metavar="DIR",
                         help="local feature-net folder (calc default: the folder recorded in the reference)")
        sub.add_argument("--inception-weights", default=None, metavar="PATH",
                         help=f"local {INCEPTION_FILE}; default $TORCH_HOME/hub/checkpoints/{INCEPTION_FILE}")
        sub.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                         help=f"images per feature batch (default {BATCH_SIZE})")
    args = parser.parse_args(argv)
    {"ref": run_ref, "calc": run_calc}[args.command](args)


if __name__ == "__main__":
    run_cli(main)
