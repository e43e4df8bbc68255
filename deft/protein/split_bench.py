"""Time the identity split on a synthetic SCOPe-size chain set, and measure what its k-mer prefilter misses.

    python -m deft.protein.split_bench --chains 15000 --out results/bench/protein-split-15k.csv

The chains are families of mutated copies of random roots (deterministic from --seed): root lengths 50–300,
residues drawn with UniProt's amino-acid frequencies, families of geometric size (mean 4); each member substitutes
a share p ~ U(0, 0.75) of the root's residues, inserts or deletes 1–4 residues at 2% of the substituted sites and
loses up to 10% at each end, so that within a family the pairwise identities spread across the 40% threshold
(the prefilter's hard case: identical residues scattered, not in conserved blocks). The timed run is
`identity_clusters` with the default prefilter, as `deft.protein.prepare` runs it. The reference for what it
misses: every within-family pair aligned (cheap), plus the edges the run found; a random sample of cross-family
pairs checks that unrelated roots stay below the threshold. Writes the CSV (one row: wall and CPU seconds, the
1-minute load average before and after, the misses, the commit and machine) and a Markdown table beside it
(`NAME.md`, rendered into docs by `python -m benchmarks.render_docs`).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tunebench.cli import run_cli

COLUMNS = ("chains", "families", "mean_length", "threshold", "wall_s", "cpu_s", "load_1min_before",
           "load_1min_after", "clusters", "family_pairs_at_threshold", "missed_by_prefilter",
           "chains_in_changed_clusters", "cross_family_pairs_checked", "cross_family_max_identity", "seed",
           "git_commit", "machine")
# UniProtKB/Swiss-Prot amino-acid composition (release 2024), in the split's residue order ARNDCQEGHILKMFPSTWYV.
FREQUENCIES = (8.25, 5.53, 4.06, 5.45, 1.37, 3.93, 6.75, 7.07, 2.27, 5.96, 9.66, 5.84, 2.42, 3.86, 4.70, 6.56, 5.34,
               1.08, 2.92, 6.87)


def synthetic_families(count: int, seed: int) -> tuple[list[str], list[int]]:
    """`count` sequences of length 50–300 in families of mutated copies, and the family of each (see the module
    docstring)."""
    import numpy as np

    from deft.protein.split import _ORDER

    rng = np.random.default_rng(seed)
    letters = np.array(list(_ORDER))
    weights = np.array(FREQUENCIES) / sum(FREQUENCIES)
    sequences: list[str] = []
    families: list[int] = []
    family = 0
    while len(sequences) < count:
        root = rng.choice(letters, size=int(rng.integers(50, 301)), p=weights)
        for _ in range(int(rng.geometric(0.25))):
            share = rng.uniform(0.0, 0.75)
            member = root.copy()
            mutated = rng.random(len(member)) < share
            member[mutated] = rng.choice(letters, size=int(mutated.sum()), p=weights)
            residues = list(member)
            for _ in range(int(rng.poisson(0.02 * mutated.sum()))):
                spot, size = int(rng.integers(len(residues))), int(rng.integers(1, 5))
                if rng.random() < 0.5:
                    del residues[spot:spot + size]
                else:
                    residues[spot:spot] = list(rng.choice(letters, size=size, p=weights))
            trim = max(1, len(residues) // 10)
            text = "".join(residues[int(rng.integers(trim)):len(residues) - int(rng.integers(trim))])
            if 50 <= len(text) <= 300 and len(sequences) < count:
                sequences.append(text)
                families.append(family)
        family += 1
    return sequences, families


def family_reference(sequences: list[str], families: list[int], threshold: float, found: list[list[int]]):
    """(clusters, pairs at ≥ threshold, of them missed by the prefilter): the reference clusters join the found
    ones with every within-family pair at ≥ threshold, each family's pairs aligned without the prefilter."""
    import numpy as np

    from deft.protein.kmer_filter import KmerIndex, KmerPrefilter
    from deft.protein.split import _components, _encode, _identities

    members: dict[int, list[int]] = {}
    for k, family in enumerate(families):
        members.setdefault(family, []).append(k)
    edges = [(group[0], k) for group in found for k in group[1:]]
    at_threshold = missed = 0
    for group in members.values():
        group = sorted(group, key=lambda k: (-len(sequences[k]), sequences[k]))
        index = KmerIndex([_encode(sequences[k]) for k in group], KmerPrefilter())
        for i in range(len(group) - 1):
            passed = set(index.candidates(i).tolist())
            identities = _identities(sequences[group[i]], [sequences[k] for k in group[i + 1:]])
            for j in np.nonzero(identities >= threshold)[0] + i + 1:
                edges.append((group[i], group[j]))
                at_threshold += 1
                missed += int(j) not in passed
    return _components(len(sequences), edges), at_threshold, missed


def cross_family_max(sequences: list[str], families: list[int], pairs: int, seed: int) -> float:
    """The highest identity among `pairs` random pairs of chains from different families."""
    import numpy as np

    from deft.protein.split import sequence_identity

    rng = np.random.default_rng(seed + 1)
    best = 0.0
    for a, b in rng.integers(len(sequences), size=(pairs, 2)).tolist():
        if families[a] != families[b]:
            best = max(best, sequence_identity(sequences[a], sequences[b]))
    return best


def markdown(row: dict) -> str:
    """The measurement as a two-column Markdown table."""
    labels = {"chains": "chains (families)", "wall_s": "wall (s)", "cpu_s": "CPU (s)",
              "load_1min_before": "load average (1 min) before / after", "clusters": "identity clusters",
              "family_pairs_at_threshold": "within-family pairs at ≥ threshold",
              "missed_by_prefilter": "of them not aligned (prefilter)",
              "chains_in_changed_clusters": "chains whose cluster differs from the reference",
              "cross_family_max_identity": "highest identity of the checked cross-family pairs",
              "git_commit": "commit", "machine": "machine"}
    values = dict(row, chains=f"{row['chains']} ({row['families']})",
                  load_1min_before=f"{row['load_1min_before']} / {row['load_1min_after']}",
                  cross_family_max_identity=f"{row['cross_family_max_identity']} "
                                            f"({row['cross_family_pairs_checked']} pairs)",
                  git_commit=f"`{str(row['git_commit'])[:10]}`")
    lines = ["| identity split, synthetic families | value |", "| --- | ---: |"]
    lines += [f"| {label} | {values[key]} |" for key, label in labels.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Parse flags, time the split, measure its misses and write the CSV and its table."""
    parser = argparse.ArgumentParser(prog="python -m deft.protein.split_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", type=int, default=15000, help="chains to generate (default 15000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic set (default 0)")
    parser.add_argument("--threshold", type=float, default=0.4, help="identity threshold (default 0.4)")
    parser.add_argument("--cross-pairs", type=int, default=2000,
                        help="random cross-family pairs aligned to check they stay below it (default 2000)")
    parser.add_argument("--out", type=Path, default=Path("results/bench/protein-split-15k.csv"),
                        help="CSV to write; its table goes beside it as .md")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    from deft.protein.split import identity_clusters
    from deft.protein.structures import Chain
    from tunebench.io import atomic_path, cpu_name, git_commit, write_csv

    sequences, families = synthetic_families(args.chains, args.seed)
    chains = [Chain(name=f"s{k}", source="synthetic", file=f"s{k}", chain_id="A", sequence=s, ca=None)
              for k, s in enumerate(sequences)]
    load_before = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    found = identity_clusters(chains, args.threshold, progress=not args.no_progress)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    load_after = os.getloadavg()[0]
    reference, at_threshold, missed = family_reference(sequences, families, args.threshold, found)
    cluster_of = {k: c for c, group in enumerate(found) for k in group}
    changed = sum(len(group) for group in reference if len({cluster_of[k] for k in group}) > 1)
    row = {"chains": len(sequences), "families": len(set(families)),
           "mean_length": round(sum(map(len, sequences)) / len(sequences), 1), "threshold": args.threshold,
           "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load_1min_before": round(load_before, 2),
           "load_1min_after": round(load_after, 2), "clusters": len(found),
           "family_pairs_at_threshold": at_threshold, "missed_by_prefilter": missed,
           "chains_in_changed_clusters": changed, "cross_family_pairs_checked": args.cross_pairs,
           "cross_family_max_identity": round(cross_family_max(sequences, families, args.cross_pairs, args.seed), 3),
           "seed": args.seed, "git_commit": git_commit(), "machine": cpu_name()}
    write_csv(args.out, COLUMNS, [row])
    with atomic_path(args.out.with_suffix(".md")) as tmp:
        Path(tmp).write_text(markdown(row))
    print(markdown(row))


if __name__ == "__main__":
    run_cli(main)
