"""Folding-free Cα metrics: Kabsch RMSD, chain geometry, P-SEA against the shipped DSSP strings, TM-score."""

import math

import numpy as np
import pytest

from deft.protein.config import StructureData, SuccessCriteria
from deft.protein.geometry import (
    bond_valid_fraction,
    ca_bond_lengths,
    clash_count,
    closest_pair,
    kabsch_superpose,
    motif_rmsd,
    pairwise_tm_diversity,
    psea,
    radius_of_gyration,
    scaffold_metrics,
    sse_fractions,
    tm_score,
)
from deft.protein.structures import read_chains, source_root

DSSP_ROOT = source_root("mdanalysis_dssp", StructureData(sources="mdanalysis_dssp"))


def _rotation(seed: int) -> np.ndarray:
    """A random proper rotation matrix."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _native(name: str = "1ahsA") -> np.ndarray:
    """The Cα of one MDAnalysisTests DSSP entry."""
    return read_chains(DSSP_ROOT / f"{name}.pdb.gz", 4.2, 1)[0].ca.astype(np.float64)


def _helix(n: int) -> np.ndarray:
    """An ideal right-handed α-helix Cα trace: radius 2.3 Å, 100° and 1.5 Å rise per residue."""
    turn = np.radians(100.0) * np.arange(n)
    return np.stack([2.3 * np.cos(turn), 2.3 * np.sin(turn), 1.5 * np.arange(n)], axis=1)


def _random_walk(n: int, seed: int) -> np.ndarray:
    """A 3.8 Å-step random walk."""
    steps = np.random.default_rng(seed).normal(size=(n - 1, 3))
    return np.vstack([np.zeros(3), np.cumsum(3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)])


def test_kabsch_recovers_rigid_motion_and_is_invariant():
    points = np.random.default_rng(0).normal(scale=5.0, size=(20, 3))
    moved = points @ _rotation(1).T + [3.0, -7.0, 11.0]
    aligned, rmsd = kabsch_superpose(moved, points)
    assert rmsd < 1e-9 and np.allclose(aligned, points, atol=1e-9)
    noisy = points + np.random.default_rng(2).normal(scale=0.5, size=points.shape)
    base = kabsch_superpose(noisy, points)[1]
    assert base > 0.1
    assert kabsch_superpose(noisy @ _rotation(3).T - 4.0, points)[1] == pytest.approx(base, abs=1e-9)
    assert kabsch_superpose(noisy, points @ _rotation(4).T + 9.0)[1] == pytest.approx(base, abs=1e-9)
    # Analytic case: a 4×2 rectangle onto a 2×2 square (same centre and axes) is off by 1 Å in x at every corner.
    square = np.array([[1, 1, 0], [1, -1, 0], [-1, -1, 0], [-1, 1, 0]], dtype=float)
    rectangle = square * [2.0, 1.0, 1.0]
    assert kabsch_superpose(rectangle @ _rotation(5).T, square)[1] == pytest.approx(1.0, abs=1e-9)


def test_kabsch_never_reflects():
    helix = _helix(12)
    mirror = helix * [1.0, 1.0, -1.0]  # a left-handed helix: a reflection would superpose it exactly
    assert kabsch_superpose(mirror, helix)[1] > 0.5


def test_motif_rmsd():
    native = _native()
    idx = np.r_[10:20, 40:45]
    moved = native @ _rotation(6).T + 20.0
    assert motif_rmsd(moved, native[idx], idx) < 1e-6
    bent = moved.copy()
    bent[idx[:5]] += [1.0, 0.0, 0.0]
    assert motif_rmsd(bent, native[idx], idx) > 0.2
    with pytest.raises(ValueError, match="selects 15 residues"):
        motif_rmsd(native, native[:3], idx)


def test_bonds_clashes_and_radius_of_gyration():
    line = np.zeros((6, 3))
    line[:, 0] = [0.0, 3.8, 7.6, 11.4, 16.4, 20.2]  # one 5.0 Å bond
    assert np.allclose(ca_bond_lengths(line), [3.8, 3.8, 3.8, 5.0, 3.8])
    assert bond_valid_fraction(line, 3.8, 0.3) == pytest.approx(0.8)
    assert math.isnan(bond_valid_fraction(line[:1], 3.8, 0.3))
    assert clash_count(line, 3.0) == 0
    # A square turn with two Cα stacked 2 Å above residues 0 and 1: pairs (0, 4) and (1, 5), 4 apart, clash.
    turn = np.array([[0, 0, 0], [3.8, 0, 0], [3.8, 3.8, 0], [0, 3.8, 0], [0, 0, 2.0], [3.8, 0, 2.0]])
    distances = np.linalg.norm(turn[:, None] - turn[None], axis=-1)
    assert sum(distances[i, j] < 3.0 for i in range(6) for j in range(i + 3, 6)) == 2
    assert clash_count(turn, 3.0) == 2 and clash_count(turn, 3.0, min_separation=5) == 0
    assert clash_count(turn, 1.5) == 0
    assert closest_pair(turn) == (0, 4, pytest.approx(2.0)) and closest_pair(turn, 5) == (0, 5, pytest.approx(
        np.sqrt(3.8 ** 2 + 2.0 ** 2)))
    with pytest.raises(ValueError, match="no pair 6 apart"):
        closest_pair(turn, 6)
    cube = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float) + 7.0
    assert radius_of_gyration(cube) == pytest.approx(math.sqrt(3.0))


def test_psea_agrees_with_shipped_dssp():
    agreements = []
    for path in sorted(DSSP_ROOT.glob("*.pdb.gz")):
        for chain in read_chains(path, 4.2, 40):
            if chain.sse is not None:
                assigned = psea(chain.ca)
                agreements.append(np.mean([a == b for a, b in zip(assigned, chain.sse)]))
    print(f"P-SEA vs DSSP 3-state agreement over {len(agreements)} chains: mean {np.mean(agreements):.3f}, "
          f"min {np.min(agreements):.3f}")
    assert len(agreements) == 50 and np.mean(agreements) >= 0.7 and np.min(agreements) >= 0.5


def test_psea_on_ideal_elements():
    helix = psea(_helix(20))
    assert len(helix) == 20 and helix.count("H") >= 16
    rise, half = 3.8 * np.sin(np.radians(62.0)), 3.8 * np.cos(np.radians(62.0))  # τ = 124°, planar zigzag
    strand = psea(np.array([[i * rise, (i % 2) * half, 0.0] for i in range(12)]))
    assert strand.count("E") >= 8 and "H" not in strand
    assert set(psea(_random_walk(40, 0))) <= set("HEC")
    assert sse_fractions("HHEC") == (0.5, 0.25, 0.25)
    assert all(math.isnan(v) for v in sse_fractions(""))


def test_tm_score():
    native = _native()
    assert tm_score(native, native) == pytest.approx(1.0, abs=1e-6)
    assert tm_score(native @ _rotation(7).T + 30.0, native) == pytest.approx(1.0, abs=1e-4)
    assert tm_score(_random_walk(len(native), 1), native) < 0.3
    assert pairwise_tm_diversity([native, native @ _rotation(8).T]) == pytest.approx(1.0, abs=1e-4)
    assert pairwise_tm_diversity([native, _random_walk(len(native), 2)]) < 0.35
    assert math.isnan(pairwise_tm_diversity([native]))


def test_scaffold_metrics_success():
    criteria = SuccessCriteria()
    native = _native("2xdgA")
    idx = np.arange(20, 35)
    metrics = scaffold_metrics(native @ _rotation(9).T, native[idx], idx, criteria)
    assert metrics["success"] is True and metrics["motif_rmsd"] < 1e-6 and metrics["clashes"] == 0
    assert metrics["bond_valid_fraction"] >= criteria.min_valid_bonds and metrics["bond_deviation"] < 0.1
    assert metrics["helix_fraction"] + metrics["strand_fraction"] + metrics["coil_fraction"] == pytest.approx(1.0)
    assert metrics["radius_of_gyration"] == pytest.approx(radius_of_gyration(native))
    wrong_motif = native[idx] + np.random.default_rng(0).normal(scale=1.5, size=(len(idx), 3))
    assert scaffold_metrics(native, wrong_motif, idx, criteria)["success"] is False
    crumpled = native.copy()
    crumpled[60] = crumpled[50]  # a Cα on top of another: a clash and two broken bonds
    result = scaffold_metrics(crumpled, native[idx], idx, criteria)
    assert result["clashes"] >= 1 and result["success"] is False
