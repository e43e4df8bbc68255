"""The table of DEFT's protocol switches (layout `protocol` of `python -m deft.report table`): for each switched run
(docs/deft.md, "Deviations from the official code"), the default run's PSNR/SSIM (and LPIPS where it was measured)
beside the switched run's, and their difference.

Its rows are one experiment (`deft_protocol`): default runs under their plain method name, switched runs under
`METHOD@rowN:SWITCH` (deft.protocol_runs), each on the dataset (task) of its default. The difference is the mean
over the test images of switched − default image by image, with its paired 95% interval, where the experiment holds
the paired rows (`METRIC_diff` under the switched run's name, `python -m deft.paired --protocol-switches`); else the
plain difference of the two means.
"""

from __future__ import annotations

import math

import pandas as pd

from benchmarks.results import ResultsError
from benchmarks.tables import DASH, Cell, Table, interval_caption, interval_cell, ordered, protocol_caption, seed_phrase
from benchmarks.total_time import PAPER_TIME_IMAGES, TIME_BASELINES, ratios_to_deft
from deft.operators.task_settings import TASK_PRESETS
from deft.protocol_runs import parse_run_name

# (metric, header, digits): the quality measures the deviations table reports.
QUALITY = (("psnr", "PSNR", 2), ("ssim", "SSIM", 3), ("lpips", "LPIPS", 3))


def measured_quality(rows: pd.DataFrame) -> list[tuple[str, str, int]]:
    """PSNR and SSIM, and LPIPS when some row has a value (it is skipped without local AlexNet weights)."""
    lpips = rows.loc[rows["metric"] == "lpips", "value"]
    return [entry for entry in QUALITY if entry[0] != "lpips" or lpips.notna().any()]


def switch_differences(rows: pd.DataFrame, metrics: list[str], methods: list[str] | None = None) -> pd.DataFrame:
    """One record per switched run and metric: row, task, method, switch, default, switched and difference
    (switched − default), each value the mean over seeds; ordered by row, task, method (`methods` first) and switch.

    A switched run without its default's row of a metric is an error naming both.
    """
    means = rows.groupby(["dataset", "method", "metric"])["value"].mean()
    records = []
    for task, name in set(zip(rows["dataset"], rows["method"])):
        parsed = parse_run_name(name)
        if parsed is None:
            continue
        method, row, switch = parsed
        for metric in metrics:
            missing = [run for run in (method, name) if (task, run, metric) not in means]
            if missing:
                raise ResultsError(f"no {metric} row of {missing[0]} on {task}: the switched run {name} is compared "
                                   f"with the default run of {method} on {task}")
            default, switched = means[(task, method, metric)], means[(task, name, metric)]
            paired = rows[(rows["dataset"] == task) & (rows["method"] == name) & (rows["metric"] == f"{metric}_diff")]
            low, high = (paired.iloc[0]["ci_low"], paired.iloc[0]["ci_high"]) if len(paired) else (math.nan, math.nan)
            records.append({"row": row, "task": task, "method": method, "switch": switch, "metric": metric,
                            "default": default, "switched": switched,
                            "difference": paired.iloc[0]["value"] if len(paired) else switched - default,
                            "ci_low": low, "ci_high": high})
    frame = pd.DataFrame(records, columns=["row", "task", "method", "switch", "metric", "default", "switched",
                                           "difference", "ci_low", "ci_high"])
    task_order = {task: i for i, task in enumerate(ordered(frame["task"], TASK_PRESETS))}
    method_order = {m: i for i, m in enumerate(ordered(frame["method"], methods or ("deft",)))}
    keys = frame.assign(task_order=frame["task"].map(task_order), method_order=frame["method"].map(method_order))
    keys = keys.sort_values(["row", "task_order", "method_order", "switch"], kind="stable")
    return frame.loc[keys.index].reset_index(drop=True)


def number(value: float, digits: int, signed: bool = False) -> Cell:
    """A number cell ("—" when missing), with its sign for a difference."""
    if math.isnan(value):
        return Cell(DASH)
    return Cell(f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}", value)


def switched_time_ratios(rows: pd.DataFrame) -> str:
    """'Total time relative to DEFT's default run …' for the switched runs of DPS and RED-diff (row 13 runs RED-diff
    at `run_commands.md`'s step count), on the test images and at the paper's count; '' when none has a DEFT run on
    its task."""
    switched = [name for name in rows["method"].unique()
                if (parsed := parse_run_name(name)) is not None and parsed[0] in TIME_BASELINES]
    measured = ratios_to_deft(rows, against=tuple(switched))
    if not measured:
        return ""
    at_paper_count = ratios_to_deft(rows, PAPER_TIME_IMAGES, against=tuple(switched))
    parts = [f"{name} on {task} {ratio:.2f}× ({at_paper_count[(task, name)]:.2f}× at {PAPER_TIME_IMAGES} images)"
             if (task, name) in at_paper_count else f"{name} on {task} {ratio:.2f}×"
             for (task, name), ratio in sorted(measured.items())]
    return ("Total time (training + sampling) of the switched DPS and RED-diff runs relative to DEFT's default run "
            f"of the task, on the test images (at the paper's count, the sampling time scaled): {'; '.join(parts)}. ")


def protocol_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """The switches table: #, task, method, switch, then default / switched / Δ for each quality metric."""
    quality = measured_quality(rows)
    metrics = [metric for metric, _, _ in quality]
    pairs = switch_differences(rows, metrics, methods)
    if pairs.empty:
        raise ResultsError(f"no switched runs (method METHOD@rowN:SWITCH) in the rows of {name}")
    header = ["#", "Task", "Method", "Switch"]
    for _, label, _ in quality:
        header += [f"{label} default", f"{label} switched", f"Δ{label}"]
    table = Table(name, header, rows=[], label_columns=4, caption="")
    for (row, task, method, switch), run in pairs.groupby(["row", "task", "method", "switch"], sort=False):
        run = run.set_index("metric")
        cells = [Cell(str(row)), Cell(task), Cell(method), Cell(switch)]
        for metric, _, digits in quality:
            difference = run.loc[metric]
            cells += [number(difference["default"], digits), number(difference["switched"], digits),
                      interval_cell(difference["difference"], difference["ci_low"], difference["ci_high"], digits,
                                    signed=True)]
        table.rows.append(cells)
    scored = rows[rows["metric"].isin(metrics)]
    paired = rows[rows["metric"].isin([f"{metric}_diff" for metric in metrics])]
    how = (f"Δ = switched − default, the mean over the test images of the image-by-image difference, "
           f"{interval_caption(paired)}" if not paired.empty else
           "Δ = switched − default, a plain difference of the two means over the test images (no paired rows); ")
    table.caption = (
        "Each protocol switch of docs/deft.md's deviations table (# = its row) against the default run of the same "
        f"method and task, on the same test images: {how}{switched_time_ratios(rows)}PSNR and SSIM on [0, 1] images "
        f"(data_range 1){', LPIPS (AlexNet, v0.1)' if 'lpips' in metrics else ''}; "
        f"{seed_phrase(scored, ['method', 'dataset', 'metric'])}. {protocol_caption(scored)}")
    return table
