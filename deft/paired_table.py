"""The table of DEFT against each baseline image by image (layout `paired` of `python -m deft.report table`; the rows
of experiment `deft_paired`, written by `deft.paired`): per task and baseline, ΔPSNR, ΔSSIM and ΔLPIPS = DEFT −
baseline, the mean over the test images with its paired 95% interval, bold where the interval favours DEFT.
"""

from __future__ import annotations

import pandas as pd

from benchmarks.results import ResultsError
from benchmarks.tables import Cell, Column, Table, interval_caption, ordered, protocol_caption, select, summarise
from deft.operators.task_settings import TASK_PRESETS

PAIRED_COLUMNS = (Column("psnr_diff", "ΔPSNR (dB)", +1, 2, show_std=False, show_interval=True, signed=True),
                  Column("ssim_diff", "ΔSSIM", +1, 3, show_std=False, show_interval=True, signed=True),
                  Column("lpips_diff", "ΔLPIPS", -1, 3, show_std=False, show_interval=True, signed=True))


def favours_reference(rows: pd.DataFrame, column: Column) -> bool:
    """Whether the row's interval lies wholly on the side of 0 where the reference (DEFT) is better."""
    if len(rows) != 1 or rows["ci_low"].isna().all():
        return False
    low, high = rows["ci_low"].iloc[0], rows["ci_high"].iloc[0]
    return low > 0 if column.direction > 0 else high < 0


def paired_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """Tasks × baselines (`methods` selects and orders them), one column per score difference, and the images
    compared."""
    rows = select(rows, [c.metric for c in PAIRED_COLUMNS], methods)
    if rows.empty:
        raise ResultsError(f"no {', '.join(c.metric for c in PAIRED_COLUMNS)} rows for {name} "
                           f"(methods {methods or 'all'})")
    reference = "/".join(sorted(set(rows["reference"]))) or "the reference"
    table = Table(name, ["Task", "Baseline", *[c.label for c in PAIRED_COLUMNS], "Images"], rows=[], label_columns=2,
                  caption="")
    for task in ordered(rows["dataset"], TASK_PRESETS):
        task_rows = rows[rows["dataset"] == task]
        table.group_starts.append(len(table.rows))
        for method in [m for m in (methods or ordered(task_rows["method"])) if m in set(task_rows["method"])]:
            pair = task_rows[task_rows["method"] == method]
            cells = []
            for column in PAIRED_COLUMNS:
                chosen = pair[pair["metric"] == column.metric]
                cells.append(summarise(chosen, column, table))
                cells[-1].bold = favours_reference(chosen, column)
            images = "/".join(str(n) for n in sorted({int(n) for n in pair["n_samples"].dropna()}))
            first = len(table.rows) == table.group_starts[-1]
            table.rows.append([Cell(task if first else ""), Cell(method), *cells, Cell(images)])
    table.caption = (f"{reference} − each baseline on the same test images, image by image: the mean difference of "
                     "PSNR (dB), SSIM and LPIPS (positive favours "
                     f"{reference} for PSNR and SSIM, negative for LPIPS). {interval_caption(rows)}Bold: the interval "
                     f"excludes 0 on {reference}'s side. Images: the test images compared (an identical pair, PSNR "
                     f"+inf, is left out of ΔPSNR). {protocol_caption(rows)}")
    return table
