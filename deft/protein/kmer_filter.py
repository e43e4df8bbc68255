"""Which pairs of chains the identity split aligns: those sharing enough k-mers on one diagonal (a seed prefilter).

Aligning every pair costs O(chains² · length²): most of a day for SCOPe's ~15k domains. Pairs of unrelated chains share
only a few k-mers, scattered over all diagonals; a pair at ≥ 40% identity over an alignment with few gaps shares runs
of identical residues that put several k-mers on one diagonal (i − j of the two positions). So a pair is aligned only
if the k-mers the two chains share on some 2·band + 1 adjacent diagonals number at least
min_hits + ⌊n / residues_per_hit⌋ (n: the longer chain's length: chance runs, such as a shared 4-mer that puts two
hits on one diagonal, grow with the lengths; 2 + ⌊n / 75⌋ halved both the misses and the alignments of 3 + ⌊m / 100⌋
on the synthetic families).

This is an approximation, not a bound: no count of shared k-mers (k ≥ 2) follows from identity ≥ 40%, since the
identical pairs can be spread out (every second residue identical gives 50% identity and no shared 2-mer on the
alignment). What it misses on families of mutated copies is measured by `deft.protein.split_bench`
(docs/protein.md, "Identity at scale"); `identity_clusters(..., prefilter=None)` aligns every pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHABET = 21  # the split's residue codes: 20 amino acids and X


@dataclass(frozen=True)
class KmerPrefilter:
    """The seed prefilter's settings (ours; measured in docs/protein.md)."""

    k: int = 3  # residues per k-mer: 21³ words keep random hits few; k = 4 would miss most pairs near 40%
    band: int = 1  # hits on 2·band + 1 adjacent diagonals count together (a one-residue indel shifts the diagonal)
    min_hits: int = 2  # hits a pair needs on one band ...
    residues_per_hit: int = 75  # ... plus one per this many residues of the longer chain


def kmer_codes(encoded: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(code, start position) of every k-mer of an encoded sequence without X (X never counts as identical)."""
    count = len(encoded) - k + 1
    if count <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    codes = np.zeros(count, dtype=np.int64)
    known = np.ones(count, dtype=bool)
    for offset in range(k):
        window = encoded[offset:offset + count]
        codes = codes * ALPHABET + window
        known &= window < ALPHABET - 1
    return codes[known], np.nonzero(known)[0]


class KmerIndex:
    """The k-mers of encoded sequences sorted longest first, and the seed test of each against those after it (n in
    the threshold is then the query's length)."""

    def __init__(self, encoded: list[np.ndarray], prefilter: KmerPrefilter):
        """Index every k-mer by (code, sequence), so that a query's hits on later sequences are contiguous runs."""
        self.prefilter = prefilter
        self.lengths = np.array([len(e) for e in encoded], dtype=np.int64)
        pairs = [kmer_codes(e, prefilter.k) for e in encoded]
        self.codes = [codes for codes, _ in pairs]
        self.positions = [positions for _, positions in pairs]
        owner = np.repeat(np.arange(len(encoded), dtype=np.int64), [len(c) for c in self.codes])
        codes = np.concatenate([np.zeros(0, dtype=np.int64), *self.codes])
        key = codes * len(encoded) + owner
        order = np.argsort(key, kind="stable")
        self.key, self.owner = key[order], owner[order]
        self.position = np.concatenate([np.zeros(0, dtype=np.int64), *self.positions])[order]
        # Diagonals shifted by span // 2 are positive, and a window's end stays below span: one block per sequence.
        self.span = 2 * int(self.lengths.max(initial=0)) + 4 * prefilter.band + 4

    def candidates(self, query: int) -> np.ndarray:
        """Indices j > query whose k-mers pass the seed test against sequence `query` (sorted)."""
        count = len(self.lengths)
        codes, positions = self.codes[query], self.positions[query]
        low = np.searchsorted(self.key, codes * count + query + 1)
        high = np.searchsorted(self.key, (codes + 1) * count)
        sizes = high - low
        total = int(sizes.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        # Every hit: the query k-mer it came from and its row in the index, without a Python loop over k-mers.
        which = np.repeat(np.arange(len(codes)), sizes)
        rows = np.arange(total) + np.repeat(low - (np.cumsum(sizes) - sizes), sizes)
        owner = self.owner[rows]
        diagonal = positions[which] - self.position[rows] + self.span // 2
        hits = np.sort(owner * self.span + diagonal)
        seeds = hits[np.r_[True, hits[1:] != hits[:-1]]]  # the distinct (sequence, diagonal) keys, still sorted
        # The hits on the diagonals seed … seed + 2·band: every window holding hits starts at one of them.
        in_band = np.searchsorted(hits, seeds + 2 * self.prefilter.band, side="right") - np.searchsorted(hits, seeds)
        needed = self.prefilter.min_hits + self.lengths[query] // self.prefilter.residues_per_hit
        return np.unique(seeds[in_band >= needed] // self.span)
