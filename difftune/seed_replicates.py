"""Training-seed replicates of the main Diff-Tuning comparison, summarised over the seeds with 95% intervals.

Every (dataset, method) run is trained once per training seed (`train.seed`; run names `method@seed=S`,
difftune.variants, seed 0 being the main comparison's run) and sampled with the same sampling seeds and labels. From
their FID rows, `summary_rows` writes the experiment `difftune_seeds` (or, for the fine-tuning-length study, whose run
names also carry `@steps=N`, `difftune_regime`: each length summarised on its own, a method's baseline being the
baseline trained for as long):

- each seed's row as it was scored (method `method@seed=S`, with its jackknife interval over the images);
- per (dataset, method): METRIC = the mean over seeds with a t-interval over seeds, METRIC_std = their sample std;
- per dataset and method other than the baseline: METRIC_rel_change_pct = the mean over seeds of the paired
  relative change 100 · (FID(method, s) − FID(baseline, s)) / FID(baseline, s), the pair being the two runs of one
  training seed s, with a t-interval over seeds;
- dataset `average`: METRIC and METRIC_rel_change_pct averaged over the datasets (each dataset's mean over seeds
  weighs the same), with the stratified t-interval: the datasets are fixed, the seeds vary within each
  (`benchmarks.intervals.stratified_t_interval`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.intervals import stratified_t_interval, t_interval
from benchmarks.results import ResultsError
from difftune.variants import Variant, parse_variant
from tunebench.io import git_commit

EXPERIMENT = "difftune_seeds"
AVERAGE = "average"  # the dataset name of the rows averaged over datasets
# Columns that must agree across a method's seeds (the protocol the seeds share); the rest are per run.
SHARED_COLUMNS = ("seed", "scale", "steps", "sampler", "guidance", "n_samples", "extractor", "reference")


def std_metric(metric: str) -> str:
    """The metric name of the sample std over seeds."""
    return f"{metric}_std"


def change_metric(metric: str) -> str:
    """The metric name of the mean paired relative change against the baseline, in percent."""
    return f"{metric}_rel_change_pct"


def seed_values(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The `metric` rows with their run name split: `method` without the seed, `training_seed`, and `run`, the
    replicate's name method@seed=S (seed 0 included). A run name that sets another key than the seed, a missing
    value, a repeated seed, fewer than 2 seeds or a (dataset, method) whose seeds differ from the others' is an error
    naming it."""
    rows = rows[rows["metric"] == metric]
    if rows.empty:
        raise ResultsError(f"no {metric} rows to summarise over seeds")
    variants = list(rows["method"].map(parse_variant))
    other = sorted({name for name, v in zip(rows["method"], variants) if v.key not in (None, "seed")})
    if other:
        raise ResultsError(f"the seed study reads seed replicates (method or method@seed=S), not {other}")
    values = rows.assign(method=[Variant(v.method, v.peft, steps=v.steps).name for v in variants],
                         training_seed=[v.seed for v in variants],
                         run=[Variant(v.method, v.peft, "seed", v.seed, v.steps).name for v in variants])
    missing = values[values["value"].isna()]
    if not missing.empty:
        first = missing.iloc[0]
        raise ResultsError(f"{first['dataset']}/{first['run']} has no {metric} value ({first['note']}); the seed "
                           "study needs every seed's value")
    repeated = values[values.duplicated(["dataset", "run"])]
    if not repeated.empty:
        raise ResultsError(f"{repeated['dataset'].iloc[0]}/{repeated['run'].iloc[0]} has two {metric} rows")
    seeds = values.groupby(["dataset", "method"])["training_seed"].apply(lambda s: tuple(sorted(s)))
    if seeds.nunique() > 1:
        raise ResultsError(f"every (dataset, method) needs the same training seeds; got {seeds.to_dict()}")
    if len(seeds.iloc[0]) < 2:
        raise ResultsError(f"the seed study needs at least 2 training seeds; got {list(seeds.iloc[0])}")
    return values


def _shared(group: pd.DataFrame, columns=SHARED_COLUMNS) -> dict:
    """The protocol `columns` of a group of seed rows, which must agree (the where of an error: its first row)."""
    shared = {}
    for column in columns:
        distinct = set(group[column].dropna())  # NaN and pandas NA never equal themselves
        if len(distinct) > 1:
            raise ResultsError(f"the seed rows of {group['dataset'].iloc[0]}/{group['method'].iloc[0]} disagree on "
                               f"{column} ({sorted(map(str, distinct))}); they must share the protocol")
        shared[column] = next(iter(distinct), None)
    return shared


def _row(base: dict, dataset: str, method: str, metric: str, value: float, interval: tuple[float, float],
         note: str, experiment: str) -> dict:
    """A summary row of the study on top of the shared protocol columns (no one model: `model` is empty)."""
    low, high = interval
    return {"reference": "", **base, "experiment": experiment, "dataset": dataset, "method": method, "metric": metric,
            "value": value, "ci_low": low, "ci_high": high, "model": "", "git_commit": git_commit(),
            "config_hash": "", "note": note}


def _listed(numbers) -> str:
    """Numbers as a short comma-separated list."""
    return ", ".join(f"{n:.4g}" for n in numbers)


def baseline_of(method: str, baseline: str) -> str:
    """The run name `method` is compared with: the baseline method trained for as long (difftune.variants)."""
    return parse_variant(baseline).with_steps(parse_variant(method).steps).name


def summary_rows(rows: pd.DataFrame, metric: str, baseline: str, experiment: str = EXPERIMENT) -> list[dict]:
    """The rows of `experiment` (module docstring) from the seed replicates' FID rows."""
    values = seed_values(rows, metric).sort_values(["dataset", "method", "training_seed"])
    missing = sorted({baseline_of(method, baseline) for method in values["method"]} - set(values["method"]))
    if missing:
        raise ResultsError(f"baseline {missing} has no seed replicates; methods: {sorted(set(values['method']))}")
    seeds = sorted(set(values["training_seed"]))
    over = f"training seeds {_listed(seeds)}"
    t_note = f"95% t-interval over the {len(seeds)} seeds ({len(seeds) - 1} df)"
    out = [{**row, "experiment": experiment, "method": run}  # each replicate's own row, under its run name
           for row, run in zip(values.drop(columns=["training_seed", "run"]).to_dict("records"), values["run"])]
    by_dataset: dict[tuple[str, str], list[np.ndarray]] = {}  # (method, metric) → each dataset's values over seeds
    for (dataset, method), group in values.groupby(["dataset", "method"]):
        base, numbers = _shared(group), group["value"].to_numpy()
        by_dataset.setdefault((method, metric), []).append(numbers)
        out.append(_row(base, dataset, method, metric, float(numbers.mean()), t_interval(numbers),
                        f"mean over {over} (per seed: {_listed(numbers)}); {t_note}", experiment))
        out.append(_row(base, dataset, method, std_metric(metric), float(numbers.std(ddof=1)),
                        (float("nan"), float("nan")), f"sample standard deviation over {over}", experiment))
        reference_run = baseline_of(method, baseline)
        if method == reference_run:
            continue
        reference = values[(values["dataset"] == dataset) & (values["method"] == reference_run)]["value"].to_numpy()
        changes = 100.0 * (numbers - reference) / reference  # paired by training seed: both sorted by it
        by_dataset.setdefault((method, change_metric(metric)), []).append(changes)
        out.append(_row(base, dataset, method, change_metric(metric), float(changes.mean()), t_interval(changes),
                        f"mean over {over} of the paired relative change 100·({method} − {reference_run})/"
                        f"{reference_run}, each pair the two runs of one training seed (per seed: "
                        f"{_listed(changes)}); {t_note}", experiment))
    datasets = sorted(set(values["dataset"]))
    # Each dataset has its own reference statistics: the average rows name none.
    base = _shared(values.assign(dataset=AVERAGE), [c for c in SHARED_COLUMNS if c != "reference"])
    for (method, name), groups in by_dataset.items():
        what = "relative change" if name != metric else metric
        out.append(_row(base, AVERAGE, method, name, float(np.mean([group.mean() for group in groups])),
                        stratified_t_interval(groups),
                        f"mean over the datasets ({', '.join(datasets)}) of each dataset's mean "
                        f"{what} over {over}; 95% t-interval from the per-dataset variances over seeds (the "
                        "datasets fixed, Welch–Satterthwaite df)", experiment))
    return out
