"""Score one reconstruction folder of `deft.reconstruct`: PSNR, SSIM, LPIPS, KID, NFE, backprops and wall times.

    python -m deft.evaluate --recon runs/mini/deft/inpaint/deft --features runs/mini/features \\
        --train-summary runs/mini/deft/inpaint/head/summary.json --results results/mini/deft_main.csv \\
        --per-image runs/mini/metrics/deft_main/inpaint/deft.per_image.csv

Conventions (DEFT `eval/psnr.py`, docs/deft.md): PSNR/SSIM on [0, 1] images, LPIPS (AlexNet) only with local
weights, each the mean over the test images with a percentile-bootstrap 95% interval over them (ci_low, ci_high);
--per-image also writes every image's scores (benchmarks.per_image), which `deft.paired` compares between methods.
KID of the reconstructions against the ground-truth test images in the features of an extractor: the
locally trained network (`kid_local`, never called Inception KID) or Inception with local weights (`kid_inception`,
skipped with a note without them), with the interval of its half-size subsets (benchmarks.fidelity). Cost rows:
`nfe` (frozen-model evaluations per image), `backbone_vjps` (backprops through it per image), `time_sample_s` (wall
seconds to reconstruct all test images), `time_train_s` (DEFT's head training, or the amortised model's, from its
stats.jsonl so resumed runs count every step once) and `time_total_s`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.lpips_args import add_lpips_args
from deft.config import DeftConfig
from tunebench.cli import run_cli
from tunebench.config import config_hash, from_dict

if TYPE_CHECKING:
    import torch

log = logging.getLogger("deft.evaluate")
TRUTH_REFERENCE = "test-truth"  # KID compares with the ground-truth test images, as DEFT/RED-diff do


def training_seconds(stats_path: Path) -> float:
    """Seconds of training steps, summed over logged intervals (steps / steps_per_s), so resumes count once."""
    rows = [json.loads(line) for line in stats_path.read_text().splitlines() if line.strip()]
    seconds, previous = 0.0, 0
    for row in rows:
        seconds += (row["step"] - previous) / row["steps_per_s"]
        previous = row["step"]
    return seconds


def kid_rows(pred: torch.Tensor, truth: torch.Tensor, kind: str, features: str | None,
             inception_weights: str | None) -> list[dict]:
    """kid_{kind} of the reconstructions against the truth images, with its 95% interval (a skipped row when
    Inception has no weights)."""
    from benchmarks.fidelity import extract_features, kid_from_features, kid_notes, make_extractor

    extractor, reason = make_extractor(kind, features, inception_weights)
    if extractor is None:
        return [{"metric": f"kid_{kind}", "value": None, "extractor": "inception-v3-compat",
                 "note": f"KID skipped: {reason}"}]
    kid = kid_from_features(extract_features(pred, extractor), extract_features(truth, extractor))
    notes = [f"vs the {len(truth)} ground-truth test images", *kid_notes(kid["kid_subsets"], kid["kid_subset_size"])]
    if kind == "local":
        notes.insert(1, "local-feature metric, not comparable to Inception KID")
    return [{"metric": f"kid_{kind}", "value": kid["kid_mean"], "ci_low": kid["kid_low"], "ci_high": kid["kid_high"],
             "extractor": extractor.extractor_id, "note": "; ".join(notes)}]


def size_rows(train_summary: dict) -> list[dict]:
    """The trained head's parameters and its share of the frozen backbone's (`head_fraction`; the paper's heads are
    4–9%), from a DEFT training summary ([] for a model that is not a head, such as the amortised one)."""
    if "head_fraction" not in train_summary:
        return []
    note = (f"head parameters / frozen backbone parameters ({train_summary['head_parameters']} / "
            f"{train_summary['backbone_parameters']})")
    return [{"metric": "head_fraction", "value": train_summary["head_fraction"], "note": note},
            {"metric": "trainable_params", "value": train_summary["head_parameters"], "note": note}]


def cost_rows(summary: dict, train_seconds: float | None, trained: str) -> list[dict]:
    """NFE, backbone backprops and wall-time rows from a reconstruction summary; `trained` names what the training
    time was spent on (DEFT's head, or the amortised model from random weights)."""
    rows = [{"metric": "nfe", "value": summary["nfe_per_image"]},
            {"metric": "backbone_vjps", "value": summary["backbone_vjps_per_image"]},
            {"metric": "time_sample_s", "value": summary["sample_seconds"],
             "note": f"wall seconds for {summary['n_images']} images"}]
    total = summary["sample_seconds"]
    if train_seconds is not None:
        rows.append({"metric": "time_train_s", "value": train_seconds, "note": f"{trained} training, from stats.jsonl"})
        total += train_seconds
    rows.append({"metric": "time_total_s", "value": total,
                 "note": "training + sampling" if train_seconds is not None else "sampling (no training)"})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Score --recon and append the rows to --results."""
    parser = argparse.ArgumentParser(prog="python -m deft.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recon", type=Path, required=True, help="output folder of deft.reconstruct")
    parser.add_argument("--results", type=Path, required=True, help="results CSV to add the rows to (made if new)")
    parser.add_argument("--per-image", type=Path, default=None,
                        help="also write each test image's PSNR/SSIM/LPIPS to this CSV (benchmarks.per_image)")
    parser.add_argument("--experiment", default="deft_main", help="the rows' experiment column")
    parser.add_argument("--method", default=None,
                        help="the rows' method column (default: the reconstruction's method); a run name such as "
                             "deft@row1:task.gradient=exact_vjp for a run under a protocol switch")
    parser.add_argument("--dataset", default=None,
                        help="the rows' dataset column (default: the reconstruction's task); the task a run that "
                             "switches the task is compared with")
    parser.add_argument("--train-summary", type=Path, default=None,
                        help="DEFT only: summary.json of deft.train (its stats.jsonl gives the training time)")
    parser.add_argument("--features", default=None, help="local feature network folder (kid_local)")
    parser.add_argument("--inception-weights", default=None, help="torch-fidelity Inception weights (kid_inception)")
    add_lpips_args(parser)
    args = parser.parse_args(argv)
    # the metrics import torch, lpips, torch-fidelity and pandas: only after parsing, so --help answers at once
    import torch

    from benchmarks.fidelity import as_rgb_uint8
    from benchmarks.per_image import write_per_image
    from benchmarks.reconstruction_rows import reconstruction_scores, score_rows
    from benchmarks.results import append_rows
    from tunebench.io import git_commit, load_npz_images, read_json

    summary = read_json(args.recon / "summary.json")
    pred, truth = (torch.from_numpy(load_npz_images(args.recon / name)).permute(0, 3, 1, 2)
                   for name in ("recon.npz", "truth.npz"))
    scores = reconstruction_scores(pred.numpy(), truth.numpy(), args.lpips_weights)
    rows = score_rows(scores)
    kinds = ["local"] if args.features else []
    kinds += ["inception"] if args.inception_weights or not args.features else []
    for kind in kinds:
        rows += kid_rows(as_rgb_uint8(pred), as_rgb_uint8(truth), kind, args.features, args.inception_weights)
    train_seconds, trained = None, ""
    if args.train_summary:
        train_seconds = training_seconds(args.train_summary.parent / "stats.jsonl")
        sizes = size_rows(read_json(args.train_summary))  # none for a model that is not a head
        rows += sizes
        trained = "head" if sizes else "model (from random weights)"
    rows += cost_rows(summary, train_seconds, trained)
    run = summary["run_config"]
    comparable = "" if summary.get("comparable", True) else (
        f"operator {summary['operator']} is a seeded stand-in: not comparable to published numbers")
    shared = {"extractor": "", "experiment": args.experiment,
              "method": args.method or summary["method"], "dataset": args.dataset or summary["task"],
              "seed": 0,
              "scale": summary["scale"], "model": summary["backbone"], "steps": summary["steps"],
              "sampler": summary["sampler"], "guidance": None, "n_samples": summary["n_images"],
              "reference": TRUTH_REFERENCE, "git_commit": git_commit(),
              "config_hash": config_hash(from_dict(run, cls=DeftConfig).task)}
    if comparable:  # once per method and task (on its PSNR row), not on every metric
        rows[0]["note"] = "; ".join(n for n in (rows[0]["note"], comparable) if n)
    append_rows(args.results, [{**shared, "note": "", **row} for row in rows])
    if args.per_image:
        write_per_image(args.per_image, shared["dataset"], shared["method"], truth.numpy(), scores.per_image())
    log.info("scored %s (%s on %s)", args.recon, summary["method"], summary["task"])


if __name__ == "__main__":
    run_cli(main)
