"""Scaffolds for every motif problem with one method, batched across problems, and DPS's guidance-scale sweep: the
sampling behind `python -m deft.protein.sample`."""

from __future__ import annotations

import logging

import numpy as np
import torch

from deft.protein.config import ProteinConfig
from deft.protein.diffusion import CentredNoise, protein_schedule
from deft.protein.motif_problems import Problem, motif_tensors
from deft.protein.samplers import sample_motif
from deft.protein.scoring import per_sample_metrics

log = logging.getLogger("deft.protein.sample")  # the CLI's name: the sweep logs for `deft.protein.sample`
SWEEP_SEED_OFFSET = 500_000  # the DPS sweep's seeds never coincide with the reported samples' seeds


def seeds_for(problem_index: int, count: int, offset: int = 0) -> list[int]:
    """Seeds of the samples of one problem."""
    return [problem_index * 1_000_000 + offset + k for k in range(count)]


def sample_problems(method: str, prior, run: ProteinConfig, problems: list[Problem], count: int, model=None,
                    dps_scale: float | None = None, seed_offset: int = 0, progress: bool = False):
    """(coords P×S×N×3 in Å, seeds P×S, mean cost per sample) for `count` samples of every problem.

    Batches of `sample.batch_size` rows run across problems (rows carry their own motif), so a small per-problem
    count still fills the fixed-size compute chunks; per-sample seeds keep every sample independent of the batching.
    """
    if len({p.length for p in problems}) != 1:
        raise ValueError("all problems must have the same length to be sampled together")
    schedule = protein_schedule(run.diffusion)
    seeds = [seeds_for(index, count, seed_offset) for index in range(len(problems))]
    masks, motifs = zip(*(motif_tensors(problem, count, run.data.coord_scale) for problem in problems))
    masks, motifs, flat_seeds = torch.cat(masks), torch.cat(motifs), [s for row in seeds for s in row]
    rows, costs = [], []
    for start in range(0, len(flat_seeds), run.sample.batch_size):
        batch = slice(start, start + run.sample.batch_size)
        x, stats = sample_motif(method, prior, schedule, run, masks[batch], motifs[batch],
                                CentredNoise(flat_seeds[batch]), model=model, dps_scale=dps_scale, progress=progress)
        rows.append(x / run.data.coord_scale)
        costs.append((len(x), stats))
    total = sum(n for n, _ in costs)
    cost = {key: sum(n * stats[key] for n, stats in costs) / total for key in costs[0][1]}
    coords = torch.cat(rows).numpy().astype(np.float32).reshape(len(problems), count, problems[0].length, 3)
    return coords, np.asarray(seeds, dtype=np.int64), cost


def warm_up(method: str, prior, run: ProteinConfig, problem: Problem, model=None) -> None:
    """One sampler step of `method` on one row of `problem`: a compiled network (`sample.compile`) compiles here, the
    forward and for DPS the gradient, before any clock starts, so every method's seconds per sample are its sampling
    alone. Rows are padded to `sample.compute_chunk`, so this one row has the shape of every later call."""
    schedule = protein_schedule(run.diffusion)
    mask, motif = motif_tensors(problem, 1, run.data.coord_scale)
    noise = CentredNoise([0])
    lowest = min(step.t for step in schedule.steps(run.sample.steps, run.sample.spacing))
    sample_motif(method, prior, schedule, run, mask, motif, noise, model=model, dps_scale=1.0,
                 start=(lowest, noise.randn((problem.length, 3))))


def success_summary(coords: np.ndarray, problems: list[Problem], run: ProteinConfig) -> tuple[int, float]:
    """(number of successes, mean motif RMSD) over all problems' samples."""
    metrics = [m for per_problem in per_sample_metrics(coords, problems, run) for m in per_problem]
    return sum(bool(m["success"]) for m in metrics), float(np.mean([m["motif_rmsd"] for m in metrics]))


def dps_sweep(prior, run: ProteinConfig, problems: list[Problem], progress: bool) -> tuple[float, list[dict]]:
    """(best scale, one row per swept scale with its successes and mean motif RMSD)."""
    rows = []
    for scale in run.dps.scale_list():
        coords, _, cost = sample_problems("dps", prior, run, problems, run.dps.sweep_samples, dps_scale=scale,
                                          seed_offset=SWEEP_SEED_OFFSET, progress=progress)
        successes, rmsd = success_summary(coords, problems, run)
        rows.append({"scale": scale, "successes": successes, "samples": coords.shape[0] * coords.shape[1],
                     "mean_motif_rmsd": rmsd})
        log.info("DPS sweep: scale %g -> %d successes, mean motif RMSD %.2f Å", scale, successes, rmsd)
    best = max(rows, key=lambda r: (r["successes"], -r["mean_motif_rmsd"]))
    return best["scale"], rows
