"""The identity split's k-mer prefilter: its seed test, and the same split as aligning every pair on the mini chains."""

import random
from dataclasses import replace

import numpy as np

from deft.protein import split_bench
from deft.protein.config import ProteinConfig
from deft.protein.kmer_filter import KmerIndex, KmerPrefilter
from deft.protein.split import _encode, identity_clusters, nonredundant, sequence_identity, split_chains
from deft.protein.structures import load_chains
from tunebench.config import resolve


def _brute_force_candidates(sequences: list[str], query: int, prefilter: KmerPrefilter) -> list[int]:
    """The seed test by its definition: shared k-mers (no X) on 2·band + 1 adjacent diagonals, pair by pair."""
    k, width = prefilter.k, 2 * prefilter.band + 1
    a = sequences[query]
    out = []
    for j in range(query + 1, len(sequences)):
        b = sequences[j]
        diagonals = [p - q for p in range(len(a) - k + 1) for q in range(len(b) - k + 1)
                     if a[p:p + k] == b[q:q + k] and "X" not in a[p:p + k]]
        best = max((sum(low <= d < low + width for d in diagonals) for low in diagonals), default=0)
        if best >= prefilter.min_hits + len(a) // prefilter.residues_per_hit:
            out.append(j)
    return out


def test_seed_test_matches_its_definition():
    rng = random.Random(3)
    root = "".join(rng.choices("ACDEFGHIKLMNPQRSTVWY", k=60))
    sequences = [root, root[5:] + "X" * 3]  # a fragment (diagonal 5) with unknown residues
    for _ in range(12):
        copy = [c if rng.random() < 0.6 else rng.choice("ACDEFGHIKLMNPQRSTVWYX") for c in root[rng.randrange(10):]]
        del copy[rng.randrange(len(copy)):][:rng.randrange(3)]  # an indel shifts the diagonal of the rest
        sequences.append("".join(copy))
    unrelated = ["".join(rng.choices("ACDEFGHIKLMNPQRSTVWY", k=rng.randint(2, 70))) for _ in range(12)]
    sequences += unrelated
    sequences.sort(key=lambda s: (-len(s), s))
    for prefilter in (KmerPrefilter(), KmerPrefilter(band=0, min_hits=2, residues_per_hit=30), KmerPrefilter(k=2)):
        index = KmerIndex([_encode(s) for s in sequences], prefilter)
        for query in range(len(sequences)):
            assert index.candidates(query).tolist() == _brute_force_candidates(sequences, query, prefilter)
    index = KmerIndex([_encode(s) for s in sequences], KmerPrefilter())
    query = sequences.index(root)
    passed = index.candidates(query).tolist()
    assert sequences.index(root[5:] + "XXX") in passed  # the fragment passes; few random sequences do
    assert len({sequences[j] for j in passed} & set(unrelated)) <= 2


def test_prefilter_gives_the_all_pairs_split_on_the_mini_chains():
    data = resolve("mini", cls=ProteinConfig).data
    chains, _ = load_chains(data)
    assert len(chains) > 100
    assert identity_clusters(chains, data.identity_threshold) == identity_clusters(
        chains, data.identity_threshold, prefilter=None)
    kept, _ = nonredundant(chains, data.identity_threshold)
    for seed in range(3):
        train, test, clusters = split_chains(kept, replace(data, split_seed=seed))
        assert len(test) > 0
        exact = [len(members) for members in identity_clusters(kept, data.identity_threshold, prefilter=None)]
        assert len(set(clusters)) <= len(exact)  # files merge clusters; identity alone keeps every chain apart
        assert exact == [1] * len(kept)


def test_long_sequences_align_with_64_bit_keys():
    rng = random.Random(4)
    fragment = "".join(rng.choices("ACDEFGHIKLMNPQRSTVWY", k=30))
    mutant = fragment[:15] + ("W" if fragment[15] != "W" else "A") + fragment[16:]
    flank = "".join(rng.choices("G", k=3500))  # 7030 residues: the keys no longer fit in 32 bits
    assert sequence_identity(flank + fragment + flank, mutant) == sequence_identity(fragment, mutant) == 29 / 30


def test_synthetic_families_are_deterministic_and_realistic():
    sequences, families = split_bench.synthetic_families(300, seed=0)
    again, _ = split_bench.synthetic_families(300, seed=0)
    assert sequences == again and len(sequences) == 300
    assert all(50 <= len(s) <= 300 for s in sequences)
    sizes = np.bincount(families)
    assert sizes.max() > 3 and 2 < sizes.mean() < 6  # families of mutated copies, so clusters exist
    clusters = identity_clusters([_chain(k, s) for k, s in enumerate(sequences)], 0.4)
    assert len(set(families)) <= len(clusters) < len(sequences)


def _chain(k: int, sequence: str):
    """A sequence-only chain (the identity split reads nothing else)."""
    from deft.protein.structures import Chain
    return Chain(name=f"s{k}", source="synthetic", file=f"s{k}", chain_id="A", sequence=sequence, ca=None)
