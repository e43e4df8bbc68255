"""The prepared chain set: structures read, one chain kept per sequence-identity cluster, split by identity, and
the Cα traces saved (`prepare`, what `python -m deft.protein.prepare` runs) and read back (`load_prepared`)."""


from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from deft.protein.config import ProteinConfig
from deft.protein.split import nonredundant, split_chains
from deft.protein.structures import Chain, StructureError, load_chains, source_root
from tunebench.config import to_dict
from tunebench.io import file_sha256, save_npz, write_csv, write_json

log = logging.getLogger("deft.protein.prepare")  # the CLI's name, so that log lines read as before

SPLITS = ("train", "test")
FORMAT = "deft.protein.chains/1"
_TEXT_FIELDS = {"names": "name", "sequences": "sequence", "sse": "sse", "sources": "source", "files": "file",
                "chain_ids": "chain_id"}
MANIFEST_COLUMNS = ("name", "split", "cluster", "source", "file", "chain_id", "residues", "helix_fraction",
                    "strand_fraction", "file_sha256")
SKIPPED_COLUMNS = ("source", "file", "reason")


def _text_array(values: list[str]) -> np.ndarray:
    """A fixed-width unicode array (never an object array, so np.load needs no pickle)."""
    return np.array(values, dtype=f"<U{max([1, *map(len, values)])}")


def chain_arrays(chains: list[Chain], split: str) -> dict[str, np.ndarray]:
    """The npz arrays of one split (see the module docstring)."""
    lengths = [len(c) for c in chains]
    arrays = {f"{split}_ca": (np.concatenate([c.ca for c in chains]).astype(np.float32) if chains
                              else np.zeros((0, 3), np.float32)),
              f"{split}_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)}
    for key, attribute in _TEXT_FIELDS.items():
        arrays[f"{split}_{key}"] = _text_array([getattr(c, attribute) or "" for c in chains])
    return arrays


def _fraction(sse: str | None, state: str) -> str:
    """Share of `state` in a DSSP string, as text ('' when unknown)."""
    return f"{sse.count(state) / len(sse):.4f}" if sse else ""


def manifest_rows(chains: list[Chain], clusters: list[int], test_names: set[str], run: ProteinConfig) -> list[dict]:
    """One manifest row per chain, in load order."""
    digests: dict[tuple[str, str], str] = {}
    rows = []
    for chain, cluster in zip(chains, clusters):
        key = (chain.source, chain.file)
        if key not in digests:
            digests[key] = file_sha256(source_root(chain.source, run.data) / chain.file)
        rows.append({"name": chain.name, "split": "test" if chain.name in test_names else "train",
                     "cluster": cluster, "source": chain.source, "file": chain.file, "chain_id": chain.chain_id,
                     "residues": len(chain), "helix_fraction": _fraction(chain.sse, "H"),
                     "strand_fraction": _fraction(chain.sse, "E"), "file_sha256": digests[key]})
    return rows


def load_prepared(folder: str | Path) -> dict[str, list[Chain]]:
    """{'train': chains, 'test': chains} as `prepare` saved them in FOLDER/chains.npz."""
    path = Path(folder) / "chains.npz"
    if not path.is_file():
        raise StructureError(f"{path} does not exist; run `python -m deft.protein.prepare --out {folder}` first")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise StructureError(f"{path} cannot be read ({err}); delete it and run deft.protein.prepare again") from None
    if "format" in arrays and str(arrays["format"]) != FORMAT:
        raise StructureError(f"{path} has format {str(arrays['format'])!r}, this code reads {FORMAT!r}; run "
                             "deft.protein.prepare again")
    out = {}
    for split in SPLITS:
        needed = [f"{split}_ca", f"{split}_offsets", *(f"{split}_{key}" for key in _TEXT_FIELDS)]
        missing = [key for key in needed if key not in arrays]
        if missing:
            raise StructureError(f"{path} lacks arrays {', '.join(missing)}; it was not written by "
                                 "deft.protein.prepare — run it again")
        out[split] = _chains_of(path, split, arrays)
    return out


def _chains_of(path: Path, split: str, arrays: dict[str, np.ndarray]) -> list[Chain]:
    """Rebuild one split's chains, checking that the arrays agree with each other."""
    ca, offsets = arrays[f"{split}_ca"], arrays[f"{split}_offsets"]
    texts = {key: arrays[f"{split}_{key}"] for key in _TEXT_FIELDS}
    count = len(texts["names"])
    consistent = (ca.ndim == 2 and ca.shape[1:] == (3,) and offsets.ndim == 1 and len(offsets) == count + 1
                  and offsets[0] == 0 and offsets[-1] == len(ca) and bool(np.all(np.diff(offsets) > 0))
                  and all(v.ndim == 1 and len(v) == count and v.dtype.kind == "U" for v in texts.values())
                  and bool(np.isfinite(ca).all()))
    if consistent:
        lengths = np.diff(offsets)
        consistent = all(len(s) == n for s, n in zip(texts["sequences"], lengths)) and all(
            len(s) in (0, n) for s, n in zip(texts["sse"], lengths))
    if not consistent:
        raise StructureError(f"{path}: the '{split}' arrays do not agree (shapes, offsets or lengths); delete it "
                             "and run deft.protein.prepare again")
    return [Chain(name=str(texts["names"][k]), source=str(texts["sources"][k]), file=str(texts["files"][k]),
                  chain_id=str(texts["chain_ids"][k]), sequence=str(texts["sequences"][k]),
                  ca=ca[offsets[k]:offsets[k + 1]].astype(np.float32), sse=str(texts["sse"][k]) or None)
            for k in range(count)]


def prepare(run: ProteinConfig, out: Path, progress: bool = False) -> dict[str, list[Chain]]:
    """Load, split and save (with progress bars over the identity alignments); returns {'train': ..., 'test': ...}."""
    chains, skipped = load_chains(run.data)
    chains, redundant = nonredundant(chains, run.data.identity_threshold, progress)
    skipped += redundant
    train, test, clusters = split_chains(chains, run.data, progress)
    test_names = {c.name for c in test}
    write_csv(out / "skipped.csv", SKIPPED_COLUMNS, skipped)
    write_csv(out / "manifest.csv", MANIFEST_COLUMNS, manifest_rows(chains, clusters, test_names, run))
    write_json(out / "config.json", to_dict(run))
    save_npz(out / "chains.npz", format=np.array(FORMAT), **chain_arrays(train, "train"), **chain_arrays(test, "test"))
    for split, members in (("train", train), ("test", test)):
        sources = {}
        for chain in members:
            sources[chain.source] = sources.get(chain.source, 0) + 1
        log.info("%s: %d chains, %d residues (%s)", split, len(members), sum(map(len, members)),
                 ", ".join(f"{s} {n}" for s, n in sources.items()) or "none")
    log.info("%d identity/file clusters at identity >= %.2f; %d files or chains skipped (see %s)",
             len(set(clusters)), run.data.identity_threshold, len(skipped), out / "skipped.csv")
    return {"train": train, "test": test}
