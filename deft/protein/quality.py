"""The quality of a set of equal-length Cα traces (a prior's unconditional samples, or crops of its training chains)
as one row of figures with 95% intervals, and the training crops that are the reference row.

- valid_bonds: the share of consecutive Cα–Cα distances within success.bond_length ± success.bond_tolerance (the
  bond half of the success criterion), pooled over the traces. Its interval is a bootstrap over traces, not a
  Wilson interval over bonds: the bonds of one chain are not independent draws.
- clash_free: the share of traces with no clash (success.clash_distance, |i − j| ≥ 3), with a Wilson interval.
- rg_mean (bootstrap interval) and rg_std: radius of gyration over the traces, Å.
- helix, strand: mean P-SEA fractions (Labesse et al. 1997, a Cα-only assignment: `geometry.psea`), bootstrap
  intervals.
"""

from __future__ import annotations

import numpy as np

from benchmarks.intervals import bootstrap_mean_interval, wilson_interval
from deft.protein.config import SuccessCriteria
from deft.protein.geometry import chain_metrics
from deft.protein.structures import Chain
from tunebench.dataset_registry import DatasetError

DATA_STEP = "data"  # the step of the training crops' reference row in a prior-quality curve
METRICS = ("valid_bonds", "clash_free", "rg_mean", "rg_std", "helix", "strand")
WITH_INTERVALS = ("valid_bonds", "clash_free", "rg_mean", "helix", "strand")
# The per-trace value (`geometry.chain_metrics` key) behind each bootstrapped mean.
_MEANS = {"valid_bonds": "bond_valid_fraction", "rg_mean": "radius_of_gyration", "helix": "helix_fraction",
          "strand": "strand_fraction"}


def metric_columns() -> list[str]:
    """The summary's columns in order: each metric, followed by its interval's `_low` and `_high` where it has one."""
    return [column for metric in METRICS
            for column in ((metric, f"{metric}_low", f"{metric}_high") if metric in WITH_INTERVALS else (metric,))]


def quality_summary(traces, criteria: SuccessCriteria) -> dict[str, float]:
    """The figures of `metric_columns` for traces (T×N×3 in Å, T ≥ 2, N ≥ 2), scored with the success thresholds."""
    traces = np.asarray(traces, dtype=np.float64)
    if traces.ndim != 3 or traces.shape[0] < 2 or traces.shape[1] < 2 or traces.shape[2] != 3:
        raise ValueError(f"quality_summary needs at least 2 traces of at least 2 residues (T×N×3), got shape "
                         f"{traces.shape}")
    per_trace = [chain_metrics(ca, criteria) for ca in traces]
    column = {key: np.array([m[key] for m in per_trace], dtype=np.float64) for key in per_trace[0]}
    row = {}
    for metric, key in _MEANS.items():
        row[metric] = float(column[key].mean())
        row[f"{metric}_low"], row[f"{metric}_high"] = bootstrap_mean_interval(column[key])
    clash_free = int(np.count_nonzero(column["clashes"] == 0))
    row["clash_free"] = clash_free / len(traces)
    row["clash_free_low"], row["clash_free_high"] = wilson_interval(clash_free, len(traces))
    row["rg_std"] = float(column["radius_of_gyration"].std(ddof=1))
    return {name: row[name] for name in metric_columns()}


def training_crops(chains: list[Chain], count: int, length: int, source: str) -> np.ndarray:
    """`count` crops of `length` residues (count×length×3, Å) of the chains read from `source`: crop k is the window
    picked uniformly, by a generator seeded k alone, among all windows of that length, so chains weigh by their
    number of windows as in the training batches (`batches.CropBatches`) and the first k crops never depend on
    `count`. Crops may overlap."""
    windows = [(index, start) for index, chain in enumerate(chains) for start in range(len(chain.ca) - length + 1)]
    if not windows:
        longest = max((len(chain.ca) for chain in chains), default=0)
        raise DatasetError(f"no training chain of {source} has {length} residues (the longest has {longest}); pass "
                           "a smaller --length")
    picks = [windows[int(np.random.default_rng(k).integers(len(windows)))] for k in range(count)]
    return np.stack([chains[index].ca[start:start + length] for index, start in picks]).astype(np.float64)
