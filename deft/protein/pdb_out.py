"""Cα-only PDB files of sampled backbones, so people can open them in PyMOL or ChimeraX.

Each residue is one CA atom of residue GLY (the samples carry no sequence); the B-factor column is 1.00 on motif
residues and 0.00 elsewhere, so `spectrum b` (PyMOL) or `color byattribute bfactor` (ChimeraX) shows the motif.
Several structures go into one file as MODEL records (PyMOL loads them as states), or as chains of one model (a
scaffold beside the native window it was superposed on). PyMOL draws a Cα-only chain with `show ribbon` or
`set cartoon_trace_atoms, 1`; ChimeraX draws it as a trace by default. Column layout: wwPDB format v3.3, §9 ATOM.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunebench.io import atomic_path


def atom_lines(coords: np.ndarray, motif: np.ndarray, chain: str, first_serial: int = 1) -> list[str]:
    """ATOM records (and the chain's TER) of one Cα trace: coords N×3 in Å, motif N booleans."""
    if coords.ndim != 2 or coords.shape[1] != 3 or len(motif) != len(coords):
        raise ValueError(f"expected N×3 coordinates and N motif flags, got {coords.shape} and {len(motif)}")
    if np.abs(coords).max(initial=0.0) >= 1e4:
        raise ValueError("coordinates of 10⁴ Å or more do not fit the PDB format's %8.3f columns")
    lines = []
    for i, ((x, y, z), flag) in enumerate(zip(coords.astype(float), motif)):
        lines.append(f"ATOM  {first_serial + i:5d}  CA  GLY {chain}{i + 1:4d}    {x:8.3f}{y:8.3f}{z:8.3f}"
                     f"{1.0:6.2f}{1.0 if flag else 0.0:6.2f}           C  ")
    last = len(coords)
    lines.append(f"TER   {first_serial + last:5d}      GLY {chain}{last:4d}")
    return lines


def write_models(path: str | Path, models: list[np.ndarray], motif: np.ndarray, title: str) -> None:
    """One chain-A Cα trace per MODEL record (the samples of one problem), atomically."""
    lines = [f"REMARK   1 {title}"[:80]]
    for number, coords in enumerate(models, start=1):
        lines += [f"MODEL     {number:4d}", *atom_lines(coords, motif, "A"), "ENDMDL"]
    _write(path, lines)


def write_chains(path: str | Path, chains: dict[str, np.ndarray], motif: np.ndarray, title: str) -> None:
    """Several Cα traces as chains of one model (e.g. A the scaffold, B the native), atomically."""
    lines, serial = [f"REMARK   1 {title}"[:80]], 1
    for chain, coords in chains.items():
        lines += atom_lines(coords, motif, chain, serial)
        serial += len(coords) + 1
    _write(path, lines)


def _write(path: str | Path, lines: list[str]) -> None:
    """The records and END, replacing `path` in one rename (atomic_path makes the folder)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join([*lines, "END"]) + "\n")
