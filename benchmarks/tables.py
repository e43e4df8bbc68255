"""Markdown and LaTeX tables in the papers' layouts (Diff-Tuning Table 1, DEFT Table 1 and Fig. 5), rendered from
results CSVs.

    python -m benchmarks.tables --results results/mini/difftune.csv --layout difftune --out-dir results/mini/tables
    python -m benchmarks.tables --results results/mini/difftune_peft.csv --layout peft --out-dir results/mini/tables
    python -m benchmarks.tables --results results/mini/deft.csv --layout deft --out-dir results/mini/tables
    python -m benchmarks.tables --results results/mini/protein_motif.csv --layout protein --out-dir results/mini/tables

One table per experiment (or only --experiment NAME), written as {experiment}.md and {experiment}.tex. Cells are the
mean over seeds, with ± the sample standard deviation when there is more than one seed; the best value is bold.
Skipped metrics show "—" and a footnote with the row's note; the caption states the protocol read from the rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.results import ResultsError, read_results
from deft.operators.tasks import TASK_PRESETS
from difftune.variants import parse_variant
from tunebench.cli import run_cli
from tunebench.datasets import DOWNSTREAM_DATASETS, PAPER_DATASETS
from tunebench.io import atomic_path

PROTOCOL_COLUMNS = ("extractor", "n_samples", "sampler", "steps", "guidance", "scale", "reference")
DATASET_ORDER = DOWNSTREAM_DATASETS + PAPER_DATASETS  # the mini sets, then the paper's Table 1 order
DASH = "—"


@dataclass(frozen=True)
class Column:
    """A metric column: its header, which direction is better (+1 higher, -1 lower, 0 not marked) and its format."""

    metric: str
    label: str
    direction: int
    digits: int
    factor: float = 1.0  # shown value = stored value × factor
    show_std: bool = True


DEFT_COLUMNS = (Column("psnr", "PSNR↑", +1, 2), Column("ssim", "SSIM↑", +1, 3), Column("lpips", "LPIPS↓", -1, 3),
                Column("kid_local", "KID×10³↓", -1, 2, 1000.0),  # stored raw, shown ×10³ as in DEFT's tables
                Column("nfe", "NFE", 0, 0, show_std=False), Column("backbone_vjps", "VJPs", 0, 0, show_std=False),
                Column("time_train_s", "Train (s)", 0, 1), Column("time_sample_s", "Sample (s)", 0, 1),
                Column("time_total_s", "Total (s)", -1, 1))


@dataclass
class Cell:
    """One table cell: plain text (Unicode ± and —), the number compared for "best", bold flag and footnote."""

    text: str
    number: float = float("nan")
    bold: bool = False
    footnote: int | None = None


@dataclass
class Table:
    """A rendered-agnostic table: header, rows of cells, groups (LaTeX \\midrule before each), footnotes, caption."""

    name: str
    header: list[str]
    rows: list[list[Cell]]
    label_columns: int  # leading text columns, left-aligned
    caption: str
    group_starts: list[int] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)

    def footnote(self, text: str) -> int:
        """Number of the footnote with this text (added on first use)."""
        if text not in self.footnotes:
            self.footnotes.append(text)
        return self.footnotes.index(text) + 1


#################################################################################
#                             Cells and Best Values                             #
#################################################################################


def summarise(rows: pd.DataFrame, column: Column, table: Table) -> Cell:
    """Mean (± sample std over seeds) of the rows' values; the rows' notes become one footnote."""
    values = rows["value"].to_numpy(dtype=float) * column.factor
    present = values[~np.isnan(values)]
    notes = sorted({note for note in rows["note"] if note})
    if len(present) and len(present) < len(values):
        notes.append(f"mean over the {len(present)} of {len(values)} seeds that have a value")
    footnote = table.footnote("; ".join(notes)) if notes else None
    if not len(present):
        return Cell(DASH, footnote=footnote)
    mean = float(present.mean())
    text = f"{mean:.{column.digits}f}"
    if len(present) > 1 and column.show_std:
        text += f" ± {present.std(ddof=1):.{column.digits}f}"
    return Cell(text, mean, footnote=footnote)


def mark_best(cells: list[Cell], column: Column) -> None:
    """Bold every cell whose value, rounded as shown, is the best in the list (ties all bold)."""
    shown = [round(cell.number, column.digits) for cell in cells if not np.isnan(cell.number)]
    if column.direction == 0 or not shown:
        return
    best = max(shown) if column.direction > 0 else min(shown)
    for cell in cells:
        cell.bold = not np.isnan(cell.number) and round(cell.number, column.digits) == best


def select(rows: pd.DataFrame, metrics: list[str], methods: list[str] | None) -> pd.DataFrame:
    """The rows of these metrics, and of these methods when a selection is given."""
    keep = rows["metric"].isin(metrics)
    if methods:
        keep &= rows["method"].isin(methods)
    return rows[keep]


def ordered(names, preferred=()) -> list[str]:
    """Unique names, those in `preferred` first in its order, the rest sorted."""
    names = set(names)
    return [n for n in preferred if n in names] + sorted(names - set(preferred))


def protocol_values(rows: pd.DataFrame, column: str) -> list[str]:
    """The distinct non-empty values of a protocol column, sorted (numbers as numbers), as text."""
    distinct = sorted({v for v in rows[column] if not pd.isna(v) and v != ""})
    return [f"{v:g}" if isinstance(v, float) else str(v) for v in distinct]


def protocol_caption(rows: pd.DataFrame) -> str:
    """The protocol columns as 'name=value'; where rows differ, per metric, method or dataset if that explains it, else
    flagged as a disagreement (one table should not silently mix protocols)."""
    parts = []
    for column in PROTOCOL_COLUMNS:
        overall = protocol_values(rows, column)
        if len(overall) <= 1:
            parts += [f"{column}={value}" for value in overall]
            continue
        for by in ("metric", "method", "dataset"):
            split = {name: protocol_values(group, column) for name, group in rows.groupby(by)}
            if all(len(values) <= 1 for values in split.values()):
                parts.append(f"{column} by {by}: " + ", ".join(f"{n}={v[0]}" for n, v in split.items() if v))
                break
        else:
            parts.append(f"NOTE: rows disagree on {column} ({', '.join(overall)})")
    return "Protocol: " + ("; ".join(parts) if parts else "not recorded in the rows") + "."


def seed_phrase(rows: pd.DataFrame, by: list[str]) -> str:
    """How the cells combine seeds, e.g. 'mean ± sample std over 3 seeds' or 'one seed'."""
    counts = rows.groupby(by)["seed"].nunique()
    low, high = int(counts.min()), int(counts.max())
    if high == 1:
        return "one seed"
    if low == high:
        return f"mean ± sample std over {low} seeds"
    return f"mean over {low}–{high} seeds (± sample std where more than one)"


#################################################################################
#                                   Layouts                                     #
#################################################################################


def difftune_table(rows: pd.DataFrame, name: str, metric: str = "fid_local", baseline: str = "full_ft",
                   methods: list[str] | None = None) -> Table:
    """Diff-Tuning Table 1: methods × datasets of one FID-like metric, plus Average and relative change vs baseline."""
    rows = select(rows, [metric], methods)
    if rows.empty:
        raise ResultsError(f"no rows with metric {metric!r} for {name} (methods {methods or 'all'}); pass --metric")
    methods = methods or ordered(rows["method"], [baseline])
    if baseline not in set(rows["method"]):
        raise ResultsError(f"baseline method {baseline!r} must be among the rows' methods with {metric} values in "
                           f"{name} ({sorted(set(rows['method']))}); pass --baseline (and include it in --methods)")
    datasets = ordered(rows["dataset"], DATASET_ORDER)
    value_column = Column(metric, metric, -1, 2)
    table = Table(name, ["Method", *datasets, "Average", f"Rel. change vs {baseline}"], rows=[], label_columns=1,
                  caption="")
    averages = {}
    for method in methods:
        cells = [summarise(rows[(rows["method"] == method) & (rows["dataset"] == d)], value_column, table)
                 for d in datasets]
        numbers = [cell.number for cell in cells]
        averages[method] = float(np.mean(numbers))  # NaN when a dataset is missing: no average over a subset
        table.rows.append([Cell(method), *cells])
    for method, row in zip(methods, table.rows):
        change = 100.0 * (averages[method] - averages[baseline]) / averages[baseline]
        row.append(Cell(DASH, footnote=table.footnote("no Average: a dataset has no value"))
                   if np.isnan(averages[method]) else Cell(f"{averages[method]:.2f}", averages[method]))
        row.append(Cell(DASH) if np.isnan(change) else Cell(f"{change:+.1f}%", change))
    change_column = Column("relative change", "", -1, 1)
    for index, column in enumerate([value_column] * (len(datasets) + 1) + [change_column], start=1):
        mark_best([row[index] for row in table.rows], column)
    table.caption = (f"{metric} (lower is better), {seed_phrase(rows, ['method', 'dataset'])}; "
                     f"Average over the {len(datasets)} datasets; relative change of the Average vs {baseline}; "
                     f"best per column in bold. {protocol_caption(rows)}")
    return table


PEFT_LABELS = {"none": "all weights", "bitfit": "BitFit", "difffit": "DiffFit", "lora": "LoRA"}


def peft_table(rows: pd.DataFrame, name: str, metric: str = "fid_local", methods: list[str] | None = None) -> Table:
    """The PEFT-compatibility table: each PEFT method with standard fine-tuning and with Diff-Tuning (rows), FID per
    dataset, the trainable share, and Diff-Tuning's relative change of the Average against the same PEFT method."""
    scores = select(rows, [metric], methods)
    if scores.empty:
        raise ResultsError(f"no rows with metric {metric!r} for {name}; pass --metric")
    variants = {method: parse_variant(method) for method in set(scores["method"])}
    pefts = ordered({v.peft for v in variants.values()}, list(PEFT_LABELS))
    objectives = ordered({v.method for v in variants.values()}, ["full_ft", "diff_tuning"])
    datasets = ordered(scores["dataset"], DATASET_ORDER)
    value_column = Column(metric, metric, -1, 2)
    table = Table(name, ["PEFT", "Objective", "Trainable %", *datasets, "Average", "Rel. change vs full_ft"],
                  rows=[], label_columns=2, caption="")
    for peft in pefts:
        table.group_starts.append(len(table.rows))
        averages = {}
        for objective in objectives:
            method = next((m for m, v in variants.items() if v.peft == peft and v.method == objective), None)
            if method is None:
                continue
            share = summarise(rows[(rows["method"] == method) & (rows["metric"] == "trainable_percent")],
                              Column("trainable_percent", "", 0, 2, show_std=False), table)
            cells = [summarise(scores[(scores["method"] == method) & (scores["dataset"] == d)], value_column, table)
                     for d in datasets]
            averages[objective] = float(np.mean([cell.number for cell in cells]))
            average = Cell(DASH) if np.isnan(averages[objective]) else Cell(f"{averages[objective]:.2f}",
                                                                             averages[objective])
            base = averages.get("full_ft", float("nan"))
            change = 100.0 * (averages[objective] - base) / base if objective != "full_ft" else float("nan")
            table.rows.append([Cell(PEFT_LABELS[peft]), Cell(objective), share, *cells, average,
                               Cell(DASH) if np.isnan(change) else Cell(f"{change:+.1f}%", change)])
    for index in range(3, 3 + len(datasets) + 1):
        mark_best([row[index] for row in table.rows], value_column)
    table.caption = (f"{metric} (lower is better), {seed_phrase(scores, ['method', 'dataset'])}; Trainable % counts "
                     f"the trained parameters (the label table included) of the model; Average over the "
                     f"{len(datasets)} datasets; relative change of a Diff-Tuning Average vs full_ft with the same "
                     f"PEFT method; best per column in bold. {protocol_caption(scores)}")
    return table


def controlnet_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """ControlNet convergence: per condition, the chance score and threshold, each base's sudden-convergence step
    and final fidelity, and the acceleration of every base over the first (the baseline)."""
    parts = rows["metric"].str.split(":", n=1, expand=True)
    rows = rows.assign(kind=parts[0], condition=parts[1])
    bases = methods or ordered(rows["method"], ["pretrained"])
    conditions = ordered(rows["condition"], ["canny", "blur", "lowres", "segmentation", "inpaint"])
    header = ["Condition", "Chance", "Threshold"]
    header += [f"{label} ({base})" for base in bases for label in ("Conv. step", "Final")]
    header += [f"Accel. ({base})" for base in bases[1:]]
    table = Table(name, header, rows=[], label_columns=1, caption="")
    score = Column("fidelity", "", 0, 3, show_std=False)
    step = Column("step", "", -1, 0, show_std=False)
    speed = Column("acceleration", "", +1, 2, show_std=False)

    def cell(kind: str, condition: str, base: str, column: Column) -> Cell:
        """One summarised value (— with the row's note when it has none)."""
        return summarise(rows[(rows["kind"] == kind) & (rows["condition"] == condition) & (rows["method"] == base)],
                         column, table)

    for condition in conditions:
        line = [Cell(condition), cell("chance_fidelity", condition, bases[0], score),
                cell("threshold", condition, bases[0], score)]
        steps = [cell("convergence_step", condition, base, step) for base in bases]
        mark_best(steps, step)
        for base, step_cell in zip(bases, steps):
            line += [step_cell, cell("final_fidelity", condition, base, score)]
        line += [cell("acceleration", condition, base, speed) for base in bases[1:]]
        table.rows.append(line)
    table.caption = (f"Sudden convergence of ControlNets on frozen bases ({', '.join(bases)}): the first scored "
                     "training step from which the control fidelity stays at or above the threshold (earliest in "
                     "bold); Final = fidelity at the last step; Accel. = the first base's step / this base's step. "
                     "Fidelity: edge F1 (canny), IoU (segmentation), PSNR dB (blur, lowres, inpaint on kept pixels); "
                     "chance = unrelated pairs of the probe images; threshold = halfway from chance to 1 (F1, IoU) "
                     f"or chance + 5 dB (PSNR). {seed_phrase(rows, ['method', 'metric'])}. {protocol_caption(rows)}")
    return table


def time_ratios(rows: pd.DataFrame, against: tuple[str, ...] = ("dps", "reddiff")) -> str:
    """'Total time of DPS / DEFT: …' per task: the paper's speed-up claim counts DEFT's training time."""
    totals = rows[rows["metric"] == "time_total_s"].groupby(["dataset", "method"])["value"].mean()
    parts = []
    for task in ordered(rows["dataset"], TASK_PRESETS):
        if (task, "deft") not in totals or not totals[(task, "deft")] > 0:
            continue
        ratios = [f"{m} {totals[(task, m)] / totals[(task, 'deft')]:.1f}×" for m in against if (task, m) in totals]
        if ratios:
            parts.append(f"{task}: {', '.join(ratios)}")
    return ("Total time (training + sampling) relative to DEFT's: " + "; ".join(parts) + ". ") if parts else ""


def deft_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None, metric: str = "kid_local") -> Table:
    """DEFT Table 1: methods grouped by task (the dataset column): quality, KID (`metric`), network passes and time."""
    columns = [dataclasses.replace(c, metric=metric) if c.metric == "kid_local" else c for c in DEFT_COLUMNS]
    metrics = [c.metric for c in columns]
    rows = select(rows, metrics, methods)
    if rows.empty:
        raise ResultsError(f"no rows for {name} with metrics {metrics} (methods {methods or 'all'})")
    table = Table(name, ["Task", "Method", *[c.label for c in columns]], rows=[], label_columns=2, caption="")
    for task in ordered(rows["dataset"], TASK_PRESETS):
        task_rows = rows[rows["dataset"] == task]
        group = []
        for method in [m for m in (methods or ordered(task_rows["method"])) if m in set(task_rows["method"])]:
            method_rows = task_rows[task_rows["method"] == method]
            group.append([Cell(task if not group else ""), Cell(method),
                          *[summarise(method_rows[method_rows["metric"] == c.metric], c, table) for c in columns]])
        for index, column in enumerate(columns, start=2):
            mark_best([row[index] for row in group], column)
        table.group_starts.append(len(table.rows))
        table.rows.extend(group)
    table.caption = (f"{time_ratios(rows)}PSNR and SSIM on [0, 1] images (data_range 1), LPIPS (AlexNet, v0.1), "
                     f"{metric} ×10³ against "
                     "the ground-truth test images; NFE = network evaluations (the frozen model's; the amortised model's "
                     "own) and VJPs = backprops through the frozen model, per image; wall seconds to train (DEFT's head) and to reconstruct all test images, and their total; "
                     f"{seed_phrase(rows, ['method', 'dataset', 'metric'])}; best per task in bold (↑ higher, ↓ lower "
                     f"is better). {protocol_caption(rows)}")
    return table


PROTEIN_QUALITY_COLUMNS = (
    Column("success_rate", "Success %↑", +1, 1, 100.0, show_std=False),
    Column("motif_placed_rate", "Motif < 1 Å %↑", +1, 1, 100.0, show_std=False),
    Column("motif_rmsd_median", "Motif RMSD (Å)↓", -1, 2, show_std=False),
    Column("bond_valid", "Valid bonds %↑", +1, 1, 100.0, show_std=False),
    Column("clash_free", "Clash-free %↑", +1, 1, 100.0, show_std=False),
    Column("helix", "Helix %", 0, 0, 100.0, show_std=False), Column("strand", "Strand %", 0, 0, 100.0, show_std=False),
    Column("radius_of_gyration", "Rg (Å)", 0, 1, show_std=False),
    Column("tm_diversity", "Pairwise TM↓", -1, 2, show_std=False),
    Column("parameters", "Params", 0, 0, show_std=False), Column("train_seconds", "Train (s)", 0, 0, show_std=False),
    Column("seconds_per_sample", "s/sample", 0, 3, show_std=False),
    Column("prior_nfe", "Prior NFE", 0, 0, show_std=False), Column("prior_vjps", "VJPs", 0, 0, show_std=False))


def _problem_order(rows: pd.DataFrame) -> list[str]:
    """Problems (the dataset column) in name order (P01-helix, P02-strand, …)."""
    return sorted(set(rows["dataset"]))


def protein_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """DEFT Fig. 5 as a table: success rate per motif problem × method, ✓ where solved (≥ 1 success), and the number
    of problems each method solves (the paper's headline: DEFT 10/12, DPS 5/12)."""
    rows = select(rows, ["success_rate", "solved"], methods)
    if rows.empty:
        raise ResultsError(f"no success_rate rows for {name} (methods {methods or 'all'})")
    methods = [m for m in (methods or ordered(rows["method"])) if m in set(rows["method"])]
    table = Table(name, ["Problem", *methods], rows=[], label_columns=1, caption="")
    rate = Column("success_rate", "", +1, 0, 100.0, show_std=False)
    solved_counts = {m: 0 for m in methods}
    problems = _problem_order(rows)
    for problem in problems:
        cells = []
        for method in methods:
            chosen = rows[(rows["dataset"] == problem) & (rows["method"] == method)]
            cell = summarise(chosen[chosen["metric"] == "success_rate"], rate, table)
            solved = chosen.loc[chosen["metric"] == "solved", "value"]
            if len(solved) and float(solved.iloc[0]) > 0:
                solved_counts[method] += 1
                cell.text += "% ✓"
            elif cell.text != DASH:
                cell.text += "%"
            cells.append(cell)
        mark_best(cells, rate)
        table.rows.append([Cell(problem), *cells])
    totals = [Cell(f"{solved_counts[m]}/{len(problems)}", solved_counts[m]) for m in methods]
    mark_best(totals, Column("solved", "", +1, 0))
    table.group_starts.append(len(table.rows))
    table.rows.append([Cell("Solved"), *totals])
    samples = protocol_values(rows, "n_samples")
    table.caption = (f"Motif scaffolding: share of the {'/'.join(samples)} samples per problem that succeed; ✓ = solved "
                     "(at least one success, the paper's convention); last row: problems solved; best per row in "
                     f"bold. {protocol_caption(rows)}")
    return table


def protein_quality_table(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """Per method, the mean over problems of success, motif RMSD, chain geometry, secondary structure, size,
    diversity and cost (one row per method)."""
    rows = select(rows, [c.metric for c in PROTEIN_QUALITY_COLUMNS] + ["radius_of_gyration_native"], methods)
    if rows.empty:
        raise ResultsError(f"no protein quality rows for {name} (methods {methods or 'all'})")
    methods = [m for m in (methods or ordered(rows["method"])) if m in set(rows["method"])]
    table = Table(f"{name}_quality", ["Method", *[c.label for c in PROTEIN_QUALITY_COLUMNS]], rows=[],
                  label_columns=1, caption="")
    for method in methods:
        method_rows = rows[rows["method"] == method]
        means = method_rows.groupby("metric")["value"].mean().reset_index().assign(note="")
        table.rows.append([Cell(method), *[summarise(means[means["metric"] == c.metric], c, table)
                                           for c in PROTEIN_QUALITY_COLUMNS]])
    for index, column in enumerate(PROTEIN_QUALITY_COLUMNS, start=1):
        mark_best([row[index] for row in table.rows], column)
    native = rows.loc[rows["metric"] == "radius_of_gyration_native", "value"].mean()
    table.caption = (f"Motif scaffolding, means over the {len(_problem_order(rows))} problems: success rate, share of "
                     "samples with the motif placed (its half of the criterion alone), median Kabsch motif RMSD, Cα–Cα bonds within tolerance, samples without Cα clashes, P-SEA helix and "
                     f"strand content, radius of gyration (native windows: {native:.1f} Å), mean pairwise TM-score "
                     "of the first 20 samples (lower = more diverse), trained parameters (DEFT heads: only the head), "
                     "training and sampling wall time, prior evaluations and VJPs through it per sample. "
                     f"{protocol_caption(rows)}")
    return table


LAYOUTS = {"difftune": difftune_table, "peft": peft_table, "controlnet": controlnet_table, "deft": deft_table,
           "protein": protein_table, "protein_quality": protein_quality_table}


#################################################################################
#                              Markdown and LaTeX                               #
#################################################################################

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "—": "---",
          "–": "--", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "×": r"$\times$", "³": r"$^3$",
          "✓": r"$\checkmark$", "Å": r"\AA{}", "α": r"$\alpha$", "β": r"$\beta$"}


def latex_text(text: str) -> str:
    """Escape LaTeX's special characters and spell the table's Unicode symbols in math mode."""
    return "".join(_LATEX.get(char, char) for char in text)


def to_markdown(table: Table) -> str:
    """GitHub Markdown: bold best cells, [^n] footnote markers, footnotes and caption below the table."""
    def cell_text(cell: Cell) -> str:
        """One Markdown cell ('|' escaped)."""
        text = cell.text.replace("|", r"\|")
        text = f"**{text}**" if cell.bold else text
        return text + (f"[^{cell.footnote}]" if cell.footnote else "")

    align = [":---"] * table.label_columns + ["---:"] * (len(table.header) - table.label_columns)
    lines = ["| " + " | ".join(table.header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell_text(cell) for cell in row) + " |" for row in table.rows]
    lines += [""] + [f"[^{n}]: {text}" for n, text in enumerate(table.footnotes, start=1)]
    return "\n".join(lines + ([""] if table.footnotes else []) + [f"*{table.caption}*", ""])


def to_latex(table: Table) -> str:
    """A booktabs `table` float: \\textbf best cells, \\textsuperscript footnotes, caption below the tabular."""
    def cell_text(cell: Cell) -> str:
        """One LaTeX cell (special characters escaped)."""
        text = latex_text(cell.text)
        text = rf"\textbf{{{text}}}" if cell.bold else text
        return text + (rf"\textsuperscript{{{cell.footnote}}}" if cell.footnote else "")

    align = "l" * table.label_columns + "r" * (len(table.header) - table.label_columns)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(latex_text(h) for h in table.header) + r" \\"]
    for index, row in enumerate(table.rows):
        if index == 0 or index in table.group_starts:
            lines.append(r"\midrule")
        lines.append(" & ".join(cell_text(cell) for cell in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [rf"\par{{\footnotesize\textsuperscript{{{n}}} {latex_text(text)}}}"
              for n, text in enumerate(table.footnotes, start=1)]
    lines += [rf"\caption{{{latex_text(table.caption)}}}", rf"\label{{tab:{table.name}}}", r"\end{table}", ""]
    return "\n".join(lines)


#################################################################################
#                                 Command Line                                  #
#################################################################################


def write_tables(results: pd.DataFrame, layout: str, out_dir: Path, experiment: str | None = None,
                 **options) -> list[Path]:
    """Render one table per experiment (or just `experiment`) to {name}.md and {name}.tex; return the paths.

    Every table is rendered before any is written, so an experiment that does not fit the layout leaves all the
    existing tables as they were.
    """
    experiments = sorted(set(results["experiment"]))
    if experiment is not None and experiment not in experiments:
        raise ResultsError(f"no rows for experiment {experiment!r}; the results have {experiments}")
    texts = {}
    for name in [experiment] if experiment else experiments:
        table = LAYOUTS[layout](results[results["experiment"] == name], re.sub(r"[^\w.-]", "_", name), **options)
        for suffix, render in ((".md", to_markdown), (".tex", to_latex)):
            texts[out_dir / f"{table.name}{suffix}"] = render(table)
    for path, text in texts.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return list(texts)


def main(argv: list[str] | None = None) -> None:
    """Parse flags, read the results and write the tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tables", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", nargs="+", required=True, type=Path, metavar="CSV", help="results CSVs")
    parser.add_argument("--layout", choices=list(LAYOUTS), required=True,
                        help="difftune: methods × datasets of one metric; peft: PEFT methods × objectives; "
                             "controlnet: convergence steps by condition; "
                             "deft: PSNR/SSIM/LPIPS/KID/NFE/time by task; "
                             "protein: motif success per problem × method; protein_quality: per-method means")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for {experiment}.md and {experiment}.tex")
    parser.add_argument("--experiment", default=None, help="render only this experiment (default: every one)")
    parser.add_argument("--methods", default=None, help="comma-separated row order and selection (default: the "
                                                        "baseline first, then alphabetical)")
    parser.add_argument("--metric", default=None, help="difftune/peft layouts: the cell metric (default fid_local); "
                                                       "deft layout: the KID column (default kid_local)")
    parser.add_argument("--baseline", default="full_ft", help="difftune layout: method for the relative change")
    args = parser.parse_args(argv)
    options = {"methods": args.methods.split(",") if args.methods else None}
    if args.layout == "difftune":
        options.update(metric=args.metric or "fid_local", baseline=args.baseline)
    elif args.layout == "peft":
        options.update(metric=args.metric or "fid_local")
    elif args.layout == "deft":
        options.update(metric=args.metric or "kid_local")
    results = read_results(*args.results)
    if results.empty:  # else the CLI would write nothing and still exit 0; checked here, where the files are known
        raise ResultsError(f"{', '.join(map(str, args.results))} hold no result rows (only a header); run the "
                           "metric jobs that append to them first")
    for path in write_tables(results, args.layout, args.out_dir, args.experiment, **options):
        print(path)


if __name__ == "__main__":
    run_cli(main)
