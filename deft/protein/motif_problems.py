"""Motif-scaffolding problems cut from held-out chains, and their storage.

Fixed-frame problems (docs/protein.md "Problems"): a window of `problems.length` residues of a test chain, centred; the
motif is a set of residues of that window, y = their Cα in the window's frame, and the scaffold has the window's
length with the motif at its native positions (SMCDiff's protocol; DEFT's masking operator y = A x). Kinds cycle
through helix, strand, loop and two-segment (two sequence-distant segments in contact, like the discontiguous
RFdiffusion targets). Secondary structure is the shipped DSSP string when there is one, else P-SEA on the Cα.

`python -m deft.protein.problems` selects and saves them: OUT/problems.csv (name, chain, window start, length, kind,
motif segments as 'a-b,c-d' in window positions, residues) and OUT/problems.npz (the centred windows, Å).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass

import numpy as np
import torch

from deft.protein.config import ProteinConfig
from deft.protein.geometry import psea
from tunebench.dataset_registry import DatasetError
from tunebench.io import save_npz, write_csv

log = logging.getLogger("deft.protein.problems")  # the CLI's name, so that log lines read as before
KINDS = ("helix", "strand", "loop", "two_segment")
PROBLEM_COLUMNS = ("name", "chain", "window_start", "length", "kind", "segments", "motif_residues")
CONTACT = 7.0  # Å: two segments are "in contact" when some pair of their Cα is closer than this


@dataclass
class Problem:
    """One scaffolding problem: the centred native window (N×3, Å) and the motif's window positions."""

    name: str
    chain: str
    start: int
    kind: str
    segments: list[tuple[int, int]]  # half-open [a, b) in window positions
    window: np.ndarray

    @property
    def length(self) -> int:
        """Scaffold length."""
        return len(self.window)

    def motif_indices(self) -> np.ndarray:
        """Window positions of the motif residues."""
        return np.concatenate([np.arange(a, b) for a, b in self.segments])

    def mask(self) -> np.ndarray:
        """0/1 float mask over the window."""
        out = np.zeros(self.length, dtype=np.float32)
        out[self.motif_indices()] = 1
        return out


def _runs(sse: str, state: str) -> list[tuple[int, int]]:
    """Maximal half-open runs of `state` in `sse`."""
    return [m.span() for m in re.finditer(f"{state}+", sse)]


def _motif_candidates(kind: str, sse: str, ca: np.ndarray, rng: np.random.Generator) -> list[list[tuple[int, int]]]:
    """Motif segment lists (chain positions) of `kind` found in one chain, in a seeded order."""
    found = []
    if kind == "helix":
        for a, b in _runs(sse, "H"):
            if b - a >= 10:
                size = int(rng.integers(10, min(14, b - a) + 1))
                start = a + int(rng.integers(0, b - a - size + 1))
                found.append([(start, start + size)])
    elif kind == "strand":
        found = [[(a, min(b, a + 10))] for a, b in _runs(sse, "E") if b - a >= 5]
    elif kind == "loop":
        for a, b in _runs(sse, "C"):
            if b - a >= 6:
                size = int(min(12, max(8, b - a + 2)))
                start = max(0, a - (size - (b - a)) // 2)
                if start + size <= len(sse):
                    found.append([(start, start + size)])
    else:
        pieces = [(a, min(b, a + 8)) for state in "HE" for a, b in _runs(sse, state) if b - a >= 5]
        for i, first in enumerate(pieces):
            for second in pieces[i + 1:]:
                first_, second_ = sorted([first, second])
                if second_[0] - first_[1] < 10:
                    continue
                gap = np.linalg.norm(ca[first_[0]:first_[1], None] - ca[None, second_[0]:second_[1]], axis=-1).min()
                if gap < CONTACT:
                    found.append([first_, second_])
    order = rng.permutation(len(found))
    return [found[i] for i in order]


def _window(segments: list[tuple[int, int]], chain_length: int, length: int, rng) -> int | None:
    """A window start such that the window of `length` holds every segment, or None."""
    low, high = max(0, segments[-1][1] - length), min(segments[0][0], chain_length - length)
    return int(rng.integers(low, high + 1)) if low <= high else None


def select_problems(chains, run: ProteinConfig) -> list[Problem]:
    """`problems.count` problems from the held-out `chains`, kinds in turn, each chain used once while possible."""
    p = run.problems
    rng = np.random.default_rng(p.seed)
    chains = [c for c in chains if len(c) >= p.length]
    if not chains:
        raise DatasetError(f"no held-out chain has problems.length = {p.length} residues; lower problems.length")
    order = [chains[i] for i in rng.permutation(len(chains))]
    used: dict[str, int] = {}
    problems: list[Problem] = []
    attempts = 0
    while len(problems) < p.count and attempts < 4 * p.count:
        kind = KINDS[attempts % len(KINDS)]
        attempts += 1
        for chain in sorted(order, key=lambda c: used.get(c.name, 0)):
            sse = chain.sse if chain.sse else psea(np.asarray(chain.ca))
            choice = next(((segs, start) for segs in _motif_candidates(kind, sse, np.asarray(chain.ca), rng)
                           if (start := _window(segs, len(chain), p.length, rng)) is not None), None)
            if choice is None:
                continue
            segments, start = choice
            window = np.asarray(chain.ca[start:start + p.length], dtype=np.float32)
            problems.append(Problem(name=f"P{len(problems) + 1:02d}-{kind}", chain=chain.name, start=start,
                                    kind=kind, segments=[(a - start, b - start) for a, b in segments],
                                    window=window - window.mean(0)))
            used[chain.name] = used.get(chain.name, 0) + 1
            break
    if len(problems) < p.count:
        log.warning("found only %d of problems.count = %d problems in %d held-out chains", len(problems), p.count,
                    len(chains))
    if not problems:
        raise DatasetError("no motif problem could be cut from the held-out chains; check the split")
    return problems


def save_problems(folder, problems: list[Problem]) -> None:
    """problems.csv and problems.npz (windows stacked in CSV order), atomically."""
    write_csv(f"{folder}/problems.csv", PROBLEM_COLUMNS,
              [{"name": p.name, "chain": p.chain, "window_start": p.start, "length": p.length, "kind": p.kind,
                "segments": ",".join(f"{a}-{b - 1}" for a, b in p.segments), "motif_residues": len(p.motif_indices())}
               for p in problems])
    save_npz(f"{folder}/problems.npz", windows=np.stack([p.window for p in problems]))


def load_problems(folder) -> list[Problem]:
    """Problems written by `save_problems`, with a clear error if the files are missing or disagree."""
    try:
        with open(f"{folder}/problems.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        with np.load(f"{folder}/problems.npz", allow_pickle=False) as data:
            windows = data["windows"]
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise DatasetError(f"{folder} holds no readable problems ({err}); make them with "
                           "python -m deft.protein.problems") from None
    if len(rows) != len(windows):
        raise DatasetError(f"{folder}: problems.csv has {len(rows)} rows but problems.npz {len(windows)} windows")
    problems = []
    for row, window in zip(rows, windows):
        segments = [(int(a), int(b) + 1) for a, b in (part.split("-") for part in row["segments"].split(","))]
        problems.append(Problem(row["name"], row["chain"], int(row["window_start"]), row["kind"], segments,
                                np.asarray(window, dtype=np.float32)))
    return problems


def motif_tensors(problem: Problem, count: int, coord_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask B×N, motif B×N×3 in model units, zero off the motif) repeated for `count` samples."""
    mask = torch.from_numpy(problem.mask())
    motif = mask[:, None] * torch.from_numpy(problem.window) * coord_scale
    return mask.expand(count, -1).clone(), motif.expand(count, -1, -1).clone()
