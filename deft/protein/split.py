"""Train/test split of chains by sequence identity: chains of one identity cluster never straddle the split.

Identity is measured on a Needleman–Wunsch/Gotoh alignment (BLOSUM62, affine gaps 11/1, end gaps free) as
identical aligned pairs / length of the shorter sequence. The free end gaps and the affine penalty matter: with a flat
+1/−1/−1 scheme a short sequence can be scattered along a long one and reach 40–50% "identity" by chance, which
would chain unrelated proteins into one cluster. Clusters are single-linkage at identity ≥ data.identity_threshold
(SCOPe's 40% subsets are cut the same way), then merged so that all segments of one file stay on one side.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from deft.protein.config import StructureData
from deft.protein.kmer_filter import KmerIndex, KmerPrefilter
from deft.protein.structures import Chain, StructureError

_ORDER = "ARNDCQEGHILKMFPSTWYV"
_BLOSUM62 = """
 4 -1 -2 -2  0 -1 -1  0 -2 -1 -1 -1 -1 -2 -1  1  0 -3 -2  0
-1  5  0 -2 -3  1  0 -2  0 -3 -2  2 -1 -3 -2 -1 -1 -3 -2 -3
-2  0  6  1 -3  0  0  0  1 -3 -3  0 -2 -3 -2  1  0 -4 -2 -3
-2 -2  1  6 -3  0  2 -1 -1 -3 -4 -1 -3 -3 -1  0 -1 -4 -3 -3
 0 -3 -3 -3  9 -3 -4 -3 -3 -1 -1 -3 -1 -2 -3 -1 -1 -2 -2 -1
-1  1  0  0 -3  5  2 -2  0 -3 -2  1  0 -3 -1  0 -1 -2 -1 -2
-1  0  0  2 -4  2  5 -2  0 -3 -3  1 -2 -3 -1  0 -1 -3 -2 -2
 0 -2  0 -1 -3 -2 -2  6 -2 -4 -4 -2 -3 -3 -2  0 -2 -2 -3 -3
-2  0  1 -1 -3  0  0 -2  8 -3 -3 -1 -2 -1 -2 -1 -2 -2  2 -3
-1 -3 -3 -3 -1 -3 -3 -4 -3  4  2 -3  1  0 -3 -2 -1 -3 -1  3
-1 -2 -3 -4 -1 -2 -3 -4 -3  2  4 -2  2  0 -3 -2 -1 -2 -1  1
-1  2  0 -1 -3  1  1 -2 -1 -3 -2  5 -1 -3 -1  0 -1 -3 -2 -2
-1 -1 -2 -3 -1  0 -2 -3 -2  1  2 -1  5  0 -2 -1 -1 -1 -1  1
-2 -3 -3 -3 -2 -3 -3 -3 -1  0  0 -3  0  6 -4 -2 -2  1  3 -1
-1 -2 -2 -1 -3 -1 -1 -2 -2 -3 -3 -1 -2 -4  7 -1 -1 -4 -3 -2
 1 -1  1  0 -1  0  0  0 -1 -2 -2  0 -1 -2 -1  4  1 -3 -2 -2
 0 -1  0 -1 -1 -1 -1 -2 -2 -1 -1 -1 -1 -2 -1  1  5 -2 -2  0
-3 -3 -4 -4 -2 -2 -3 -2 -2 -3 -2 -3 -1  1 -4 -3 -2 11  2 -3
-2 -2 -2 -3 -2 -1 -2 -3  2 -1 -1 -2 -1  3 -3 -2 -2  2  7 -1
 0 -3 -3 -3 -1 -2 -2 -3 -3  3  1 -2  1 -1 -2 -2  0 -3 -1  4
"""
GAP_OPEN = 11  # cost of a gap's first residue (BLAST's BLOSUM62 defaults)
GAP_EXTEND = 1  # cost of each further residue
PREFILTER = KmerPrefilter()  # which pairs get aligned (deft.protein.kmer_filter)

_X = len(_ORDER)  # index of 'X' (and of any other letter): −1 against everything, never counted as identical


def _scores() -> np.ndarray:
    """21×21 BLOSUM62 with a row and column for X."""
    table = np.full((_X + 1, _X + 1), -1, dtype=np.int64)
    table[:_X, :_X] = np.array(_BLOSUM62.split(), dtype=np.int64).reshape(_X, _X)
    return table


SCORES = _scores()
_LOOKUP = np.full(256, _X, dtype=np.int64)
_LOOKUP[np.frombuffer(_ORDER.encode(), dtype=np.uint8)] = np.arange(_X)


def _encode(sequence: str) -> np.ndarray:
    """Residue indices into SCORES (unknown letters → X)."""
    return _LOOKUP[np.frombuffer(sequence.upper().encode("ascii", "replace"), dtype=np.uint8)]


def _identities(query: str, targets: list[str]) -> np.ndarray:
    """Identity of `query` against each target, aligning it with all targets at once, one DP row at a time.

    Scores and identity counts travel together as one integer key = score·K + identical pairs (K > any count), so
    the DP maximises the score and, among optimal alignments, the number of identical pairs; the count of the best
    alignment is then key mod K — a traceback folded into the recursion. The horizontal-gap recurrence of a row,
    E[j] = max_{k<j} (V[k] − open − extend·(j−1−k)), is a running maximum of V[k] + extend·k
    (`np.maximum.accumulate`); opening a gap right after another is never better than extending it, so V (the
    row without horizontal gaps) suffices. End gaps are free: row 0 and column 0 are 0, and the result is the best
    of the last row and of each target's last column.
    """
    n, k = len(query), len(targets)
    lengths = np.array([len(t) for t in targets], dtype=np.int64)
    out = np.zeros(k)
    if n == 0 or k == 0 or lengths.max() == 0:
        return out
    width = int(lengths.max())
    scale = n + 1  # K: more than the most identical pairs any alignment of `query` can have
    # Every key stays below 12·(n + width + GAP_OPEN)·K in magnitude (scores ≤ 11 per pair, gaps and mismatches
    # at most GAP_OPEN + 1 or 4 per residue): int32 when that fits with room, which makes the DP 2.3× faster.
    small = 24 * (n + width + GAP_OPEN) * scale < 1 << 30
    dtype = np.int32 if small else np.int64
    floor = -(1 << 30) if small else -(1 << 50)
    weight = (SCORES * scale + np.diag(np.r_[np.ones(_X, dtype=np.int64), 0])).astype(dtype)
    gap_open, gap_extend = GAP_OPEN * scale, GAP_EXTEND * scale
    encoded = np.full((k, width), _X, dtype=np.int64)
    for row, target in enumerate(targets):
        encoded[row, :len(target)] = _encode(target)
    profile = weight[:, encoded]  # 21×k×width: the substitution row of each query letter, gathered once
    ramp = gap_extend * np.arange(width + 1, dtype=dtype)
    h_prev = np.zeros((k, width + 1), dtype=dtype)
    f_prev = np.full((k, width), floor, dtype=dtype)
    g = np.zeros((k, width + 1), dtype=dtype)
    best = np.zeros(k, dtype=dtype)  # the empty alignment (everything an end gap) scores 0
    rows, last_col = np.arange(k), lengths - 1
    for letter in _encode(query):
        f = np.maximum(h_prev[:, 1:] - gap_open, f_prev - gap_extend)  # gap in the target (vertical)
        v = np.maximum(h_prev[:, :-1] + profile[letter], f)
        g[:, 1:] = v + ramp[1:]
        e = np.maximum.accumulate(g, axis=1)[:, :-1] - gap_open - ramp[:-1]  # gap in the query (horizontal)
        h = np.maximum(v, e)
        best = np.maximum(best, h[rows, last_col])  # target ends here; the rest of the query is an end gap
        h_prev[:, 1:] = h
        f_prev = f
    inside = np.arange(width) < lengths[:, None]
    best = np.maximum(best, np.where(inside, h_prev[:, 1:], floor).max(axis=1))  # query ends; target end gap
    counts = np.mod(best, scale)
    return np.where(lengths > 0, counts / np.maximum(np.minimum(n, lengths), 1), 0.0)


def sequence_identity(a: str, b: str) -> float:
    """Identical aligned pairs of an optimal alignment of a and b, over the length of the shorter (0 if empty)."""
    return float(_identities(a, [b])[0])


class _Forest:
    """Union-find over `count` nodes (path halving; the smaller root wins, so roots are deterministic)."""

    def __init__(self, count: int):
        """Every node its own tree."""
        self.parent = list(range(count))

    def find(self, x: int) -> int:
        """Root of x, halving the path on the way."""
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        """Join the trees of a and b."""
        ra, rb = self.find(int(a)), self.find(int(b))
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _components(count: int, edges) -> list[list[int]]:
    """Connected components of `count` nodes, each sorted, ordered by their smallest member."""
    forest = _Forest(count)
    for a, b in edges:
        forest.union(a, b)
    groups: dict[int, list[int]] = {}
    for node in range(count):
        groups.setdefault(forest.find(node), []).append(node)
    return sorted(groups.values(), key=lambda members: members[0])


def identity_clusters(chains: list[Chain], threshold: float, prefilter: KmerPrefilter | None = PREFILTER,
                      progress: bool = False) -> list[list[int]]:
    """Single-linkage clusters of chain indices: chains at identity ≥ threshold (directly or via others) share one.

    Identical sequences are one node. Each unique sequence (longest first) is aligned in one batched DP against the
    shorter-or-equal ones that pass `prefilter` (all of them when it is None: the exact, quadratic reference) and
    are not yet in its cluster: a pair already joined through others cannot change a single-linkage cluster.
    """
    unique = sorted({c.sequence for c in chains}, key=lambda s: (-len(s), s))
    index = KmerIndex([_encode(s) for s in unique], prefilter) if prefilter is not None else None
    forest = _Forest(len(unique))
    for i in tqdm(range(len(unique) - 1), desc="identity", unit="chain", disable=not progress):
        candidates = index.candidates(i) if index is not None else range(i + 1, len(unique))
        root = forest.find(i)
        targets = [int(j) for j in candidates if forest.find(int(j)) != root]
        if targets:
            # The longer sequence is the query: the DP loops over its rows, vectorised over the shorter targets.
            identities = _identities(unique[i], [unique[j] for j in targets])
            for j in np.asarray(targets)[identities >= threshold]:
                forest.union(i, j)
    node = {s: forest.find(u) for u, s in enumerate(unique)}
    first: dict[int, int] = {}
    edges = [(first.setdefault(node[c.sequence], k), k) for k, c in enumerate(chains)]
    return _components(len(chains), edges)


def nonredundant(chains: list[Chain], threshold: float, progress: bool = False) -> tuple[list[Chain], list[dict]]:
    """One representative per identity cluster (the longest; ties by name), as SCOPe's 40% subset keeps one domain per
    cluster, and a skipped-row for every other member (a homo-oligomer's 60 copies would otherwise dominate)."""
    kept, dropped = set(), []
    for members in identity_clusters(chains, threshold, progress=progress):
        best = min(members, key=lambda i: (-len(chains[i]), chains[i].name))
        kept.add(best)
        dropped += [{"source": chains[i].source, "file": chains[i].file,
                     "reason": f"chain {chains[i].name} is redundant: identity >= {threshold:.2f} with "
                               f"{chains[best].name} ({chains[best].file}), which is kept (one chain per cluster)"}
                    for i in members if i != best]
    return [c for i, c in enumerate(chains) if i in kept], dropped


def split_chains(chains: list[Chain], data: StructureData,
                 progress: bool = False) -> tuple[list[Chain], list[Chain], list[int]]:
    """(train, test, cluster id per chain): whole clusters go to one side, chosen by a seeded shuffle.

    Clusters are the identity clusters merged so that all segments of one file share a cluster (a complex or a
    broken chain is one protein: none of it may be trained on when part of it is a test motif). Clusters are taken
    in a seeded random order into the test side while they fit into round(test_fraction · chains); if none fits,
    the smallest goes. The train side keeps at least one cluster; test_fraction = 0 puts everything in train.
    """
    if not chains:
        raise StructureError("no chains to split; check data.sources")
    identity = identity_clusters(chains, data.identity_threshold, progress=progress)
    by_file: dict[tuple[str, str], int] = {}
    edges = [(members[0], m) for members in identity for m in members[1:]]
    for i, chain in enumerate(chains):
        first = by_file.setdefault((chain.source, chain.file), i)
        edges.append((first, i))
    clusters = _components(len(chains), edges)
    cluster_of = [0] * len(chains)
    for c, members in enumerate(clusters):
        for i in members:
            cluster_of[i] = c
    test_ids: set[int] = set()
    if data.test_fraction > 0:
        if len(clusters) < 2:
            raise StructureError(f"all {len(chains)} chains form one cluster at data.identity_threshold = "
                                 f"{data.identity_threshold}, so no test chain can be held out; add structures, or "
                                 "set data.test_fraction=0")
        target = min(max(1, round(data.test_fraction * len(chains))), len(chains) - 1)
        order = np.random.default_rng(data.split_seed).permutation(len(clusters))
        size = 0
        for c in order.tolist():
            if size + len(clusters[c]) <= target and len(test_ids) < len(clusters) - 1:
                test_ids.add(c)
                size += len(clusters[c])
        if not test_ids:  # every cluster is larger than the target: hold out the smallest one (first in the order)
            test_ids.add(min(order.tolist(), key=lambda c: len(clusters[c])))
    train = [ch for ch, c in zip(chains, cluster_of) if c not in test_ids]
    test = [ch for ch, c in zip(chains, cluster_of) if c in test_ids]
    return train, test, cluster_of
