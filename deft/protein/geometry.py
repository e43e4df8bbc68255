"""Folding-free metrics of Cα traces (numpy, Å): motif RMSD, chain geometry, P-SEA secondary structure, TM-score.

They stand in for the paper's designability check (ProteinMPNN + ESMFold scRMSD), which needs weights that cannot
be had offline (DEFT App. E.2; docs/protein.md): a scaffold succeeds when its motif is placed (Kabsch motif RMSD below
success.motif_rmsd), its virtual Cα–Cα bonds are realistic and no two non-adjacent Cα clash.
"""

from __future__ import annotations

import math

import numpy as np

from deft.protein.config import SuccessCriteria


def _points(array, name: str) -> np.ndarray:
    """`array` as float64 N×3, or a ValueError naming the argument."""
    points = np.asarray(array, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{name} must be an N×3 array of Cα coordinates, got shape {points.shape}")
    return points


def kabsch_fit(mobile, target) -> tuple[np.ndarray, np.ndarray]:
    """(rotation R, shift s) of the least-squares rigid motion (proper rotation only) taking `mobile` onto `target`:
    moved = mobile @ R.T + s. Apply it to more points than were fitted, e.g. a whole scaffold fitted on its motif."""
    mobile, target = _points(mobile, "mobile"), _points(target, "target")
    if mobile.shape != target.shape or len(mobile) == 0:
        raise ValueError(f"the Kabsch fit needs two non-empty arrays of the same shape, got {mobile.shape} and "
                         f"{target.shape}")
    mobile_mean, target_mean = mobile.mean(axis=0), target.mean(axis=0)
    u, _, vt = np.linalg.svd((mobile - mobile_mean).T @ (target - target_mean))
    # Flip the axis of the smallest singular value when the best orthogonal map is a reflection: a mirror-image
    # motif must not count as placed.
    sign = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rotation = vt.T @ np.diag([1.0, 1.0, sign]) @ u.T
    return rotation, target_mean - mobile_mean @ rotation.T


def kabsch_superpose(mobile, target) -> tuple[np.ndarray, float]:
    """`mobile` rigidly moved onto `target` (least squares, proper rotation only) and the RMSD after the move."""
    rotation, shift = kabsch_fit(mobile, target)
    aligned = _points(mobile, "mobile") @ rotation.T + shift
    rmsd = float(np.sqrt(np.mean(np.sum((aligned - _points(target, "target")) ** 2, axis=1))))
    return aligned, rmsd


def motif_rmsd(sample, motif_coords, motif_idx) -> float:
    """Cα RMSD of the sample's motif residues (`motif_idx`) after Kabsch superposition onto `motif_coords`."""
    sample = _points(sample, "sample")
    selected = sample[np.asarray(motif_idx)]
    if len(selected) != len(_points(motif_coords, "motif_coords")):
        raise ValueError(f"motif_idx selects {len(selected)} residues but motif_coords has {len(motif_coords)}")
    return kabsch_superpose(selected, motif_coords)[1]


def ca_bond_lengths(ca) -> np.ndarray:
    """Distances between consecutive Cα (N−1 values)."""
    ca = _points(ca, "ca")
    return np.linalg.norm(np.diff(ca, axis=0), axis=1)


def bond_valid_fraction(ca, length: float, tolerance: float) -> float:
    """Fraction of consecutive Cα–Cα distances within `tolerance` of `length` (NaN for fewer than two residues)."""
    bonds = ca_bond_lengths(ca)
    return float(np.mean(np.abs(bonds - length) <= tolerance)) if len(bonds) else math.nan


def _separated_distances(ca, min_separation: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, distance) of every Cα pair i < j at least `min_separation` apart in sequence."""
    ca = _points(ca, "ca")
    i, j = np.triu_indices(len(ca), k=min_separation)
    return i, j, np.linalg.norm(ca[i] - ca[j], axis=-1)


def clash_count(ca, distance: float, min_separation: int = 3) -> int:
    """Number of Cα pairs at least `min_separation` apart in sequence that are closer than `distance`."""
    return int(np.count_nonzero(_separated_distances(ca, min_separation)[2] < distance))


def closest_pair(ca, min_separation: int = 3) -> tuple[int, int, float]:
    """(i, j, distance) of the spatially closest Cα pair at least `min_separation` apart in sequence: the pair a
    clash is about; the first in row order on ties."""
    i, j, distances = _separated_distances(ca, min_separation)
    if not len(distances):
        raise ValueError(f"a trace of {len(_points(ca, 'ca'))} residues has no pair {min_separation} apart")
    k = int(np.argmin(distances))
    return int(i[k]), int(j[k]), float(distances[k])


def radius_of_gyration(ca) -> float:
    """Root-mean-square distance of the Cα from their centroid."""
    ca = _points(ca, "ca")
    return float(np.sqrt(np.mean(np.sum((ca - ca.mean(axis=0)) ** 2, axis=1))))


# P-SEA criteria (Labesse et al. 1997, CABIOS 13:291): Cα distances d2 = |i−1, i+1|, d3 = |i−1, i+2|,
# d4 = |i−1, i+3| (Å), the virtual bond angle τ(i−1, i, i+1) and dihedral α(i−1, i, i+1, i+2) (degrees), as
# (centre, half-width).
_HELIX = {"d3": (5.3, 0.5), "d4": (6.4, 0.6), "tau": (89.0, 12.0), "alpha": (50.0, 20.0)}
_STRAND = {"d2": (6.7, 0.6), "d3": (9.9, 0.9), "d4": (12.4, 1.1), "tau": (124.0, 14.0), "alpha": (-170.0, 45.0)}
_CONTACT = (4.2, 5.2)  # Å: a Cα of a neighbouring strand (a 3-residue strand needs 5 such contacts in total)


def _descriptors(ca: np.ndarray) -> dict[str, np.ndarray]:
    """d2, d3, d4, τ and α per residue (NaN where a needed neighbour is missing)."""
    n = len(ca)
    out = {key: np.full(n, np.nan) for key in ("d2", "d3", "d4", "tau", "alpha")}
    for key, step in (("d2", 2), ("d3", 3), ("d4", 4)):
        if n > step:
            out[key][1:n - step + 1] = np.linalg.norm(ca[step:] - ca[:n - step], axis=1)
    if n >= 3:
        a, b = ca[:-2] - ca[1:-1], ca[2:] - ca[1:-1]
        cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        out["tau"][1:n - 1] = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    if n >= 4:
        b0, b1, b2 = ca[1:-2] - ca[:-3], ca[2:-1] - ca[1:-2], ca[3:] - ca[2:-1]
        n1, n2 = np.cross(b0, b1), np.cross(b1, b2)
        y = np.linalg.norm(b1, axis=1) * np.sum(b0 * n2, axis=1)
        out["alpha"][1:n - 2] = np.degrees(np.arctan2(y, np.sum(n1 * n2, axis=1)))  # IUPAC sign: α-helix > 0
    return out


def _within(values: np.ndarray, centre: float, half: float, periodic: bool = False) -> np.ndarray:
    """|value − centre| ≤ half (angles wrapped to ±180° when periodic); NaN is never within."""
    delta = values - centre
    if periodic:
        delta = (delta + 180.0) % 360.0 - 180.0
    with np.errstate(invalid="ignore"):
        return np.abs(delta) <= half


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _long_runs(mask: np.ndarray, minimum: int) -> np.ndarray:
    """The True runs of at least `minimum` elements."""
    out = np.zeros_like(mask)
    for start, stop in _runs(mask):
        if stop - start >= minimum:
            out[start:stop] = True
    return out


def _extend(mask: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Each True run grown by one element at each end where `allowed` holds (P-SEA's elongation rule)."""
    out = mask.copy()
    for start, stop in _runs(mask):
        if start > 0 and allowed[start - 1]:
            out[start - 1] = True
        if stop < len(mask) and allowed[stop]:
            out[stop] = True
    return out


def psea(ca) -> str:
    """P-SEA secondary structure of a Cα trace: 'H' helix, 'E' strand, 'C' coil per residue.

    Helix: ≥ 5 consecutive residues with (d3 and d4) or (τ and α) in the helical ranges, grown by one residue at
    each end meeting d3 or τ. Strand: ≥ 4 consecutive residues with (d2, d3 and d4) or (τ and α) in the extended
    ranges, or 3 such residues with ≥ 5 Cα contacts at 4.2–5.2 Å (a partner strand), grown by one residue at each
    end meeting d3. Strand wins where both apply (as in biotite's annotate_sse).
    """
    ca = _points(ca, "ca")
    d = _descriptors(ca)
    helix_d = _within(d["d3"], *_HELIX["d3"]) & _within(d["d4"], *_HELIX["d4"])
    helix_angles = _within(d["tau"], *_HELIX["tau"]) & _within(d["alpha"], *_HELIX["alpha"], periodic=True)
    helix = _extend(_long_runs(helix_d | helix_angles, 5),
                    _within(d["d3"], *_HELIX["d3"]) | _within(d["tau"], *_HELIX["tau"]))
    strand_d = (_within(d["d2"], *_STRAND["d2"]) & _within(d["d3"], *_STRAND["d3"])
                & _within(d["d4"], *_STRAND["d4"]))
    strand_angles = _within(d["tau"], *_STRAND["tau"]) & _within(d["alpha"], *_STRAND["alpha"], periodic=True)
    strict = strand_d | strand_angles
    strand = _long_runs(strict, 4)
    short = _long_runs(strict, 3) & ~strand
    if short.any():
        gaps = np.linalg.norm(ca[:, None, :] - ca[None, :, :], axis=-1)
        contacts = np.count_nonzero((gaps > _CONTACT[0]) & (gaps <= _CONTACT[1]), axis=1)
        for start, stop in _runs(short):
            if contacts[start:stop].sum() >= 5:
                strand[start:stop] = True
    strand = _extend(strand, _within(d["d3"], *_STRAND["d3"]))
    labels = np.full(len(ca), "C")
    labels[helix] = "H"
    labels[strand] = "E"
    return "".join(labels.tolist())


def sse_fractions(sse: str) -> tuple[float, float, float]:
    """(helix, strand, coil) fractions of an 'H'/'E'/'C' string (NaN for an empty one)."""
    if not sse:
        return math.nan, math.nan, math.nan
    n = len(sse)
    helix, strand = sse.count("H") / n, sse.count("E") / n
    return helix, strand, 1.0 - helix - strand


def _tm_align(a, b):
    """tmtools' TM-align result for two Cα traces (poly-alanine sequences: structure only)."""
    try:
        from tmtools import tm_align
    except ImportError:
        raise ImportError("TM-scores need the tmtools package; run `bash scripts/setup.sh`") from None
    a = np.ascontiguousarray(_points(a, "a"))
    b = np.ascontiguousarray(_points(b, "b"))
    return tm_align(a, b, "A" * len(a), "A" * len(b))


def tm_score(a, b) -> float:
    """TM-score of the TM-align superposition of `a` onto `b`, normalised by the length of `b`."""
    return float(_tm_align(a, b).tm_norm_chain2)


def pairwise_tm_diversity(structures: list) -> float:
    """Mean TM-score over all pairs (each pair counted with both normalisations); NaN for fewer than 2 structures.

    Lower means more diverse samples.
    """
    if len(structures) < 2:
        return math.nan
    scores = []
    for i in range(len(structures)):
        for j in range(i + 1, len(structures)):
            result = _tm_align(structures[i], structures[j])
            scores.append(0.5 * (result.tm_norm_chain1 + result.tm_norm_chain2))
    return float(np.mean(scores))


def chain_metrics(ca, criteria: SuccessCriteria) -> dict:
    """The motif-free metrics of one Cα trace: the chain-geometry half of the success criterion (valid Cα–Cα bonds,
    clashes, with the success.* thresholds), radius of gyration and P-SEA secondary-structure fractions."""
    ca = _points(ca, "ca")
    bonds = ca_bond_lengths(ca)
    helix, strand, coil = sse_fractions(psea(ca))
    return {
        "bond_valid_fraction": bond_valid_fraction(ca, criteria.bond_length, criteria.bond_tolerance),
        "bond_deviation": float(np.mean(np.abs(bonds - criteria.bond_length))) if len(bonds) else math.nan,
        "clashes": clash_count(ca, criteria.clash_distance),
        "radius_of_gyration": radius_of_gyration(ca),
        "helix_fraction": helix,
        "strand_fraction": strand,
        "coil_fraction": coil,
    }


def scaffold_metrics(ca, motif_coords, motif_idx, criteria: SuccessCriteria) -> dict:
    """All per-sample metrics of a generated scaffold and its folding-free success (success.* thresholds)."""
    rmsd = motif_rmsd(ca, motif_coords, motif_idx)
    chain = chain_metrics(ca, criteria)
    # NaN comparisons are False: a trace without bonds never succeeds.
    success = (rmsd < criteria.motif_rmsd and chain["bond_valid_fraction"] >= criteria.min_valid_bonds
               and chain["clashes"] == 0)
    return {"motif_rmsd": rmsd, **chain, "success": bool(success)}
