"""Tables rendered from results rows, in any layout: the table model (columns, cells, footnotes, caption), cells as
the mean (± sample std) over seeds or one value with its 95% interval, the best value in bold (where the layout can
tell it from a tie), the protocol caption, Markdown and LaTeX, and writing one table per experiment. The papers'
layouts live with their methods (`difftune.report`, `difftune.controlnet.report`, `deft.report`,
`deft.protein.report`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.intervals import INTERVAL_NOTE
from benchmarks.results import ResultsError, check_one_kind
from tunebench.io import atomic_path

PROTOCOL_COLUMNS = ("extractor", "n_samples", "sampler", "steps", "guidance", "scale", "reference")
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
    show_interval: bool = False  # one seed: "value [ci_low, ci_high]", the rows' interval descriptions left out
    signed: bool = False  # "+1.20" (a difference)
    unit: str = ""  # after the value, e.g. "%"


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


def split_note(note: str) -> tuple[str, str]:
    """A row's note without the part that says how its interval was made, and that part's text after
    `INTERVAL_NOTE` ("" when there is none)."""
    parts = note.split("; ")
    how = [part.removeprefix(INTERVAL_NOTE) for part in parts if part.startswith(INTERVAL_NOTE)]
    return "; ".join(part for part in parts if not part.startswith(INTERVAL_NOTE)), "; ".join(how)


def interval_caption(rows: pd.DataFrame) -> str:
    """'[low, high]: 95% intervals, …' naming how the rows' intervals were made, for a table whose cells show them
    (the descriptions are then not footnotes); "" when no row has one."""
    ways = sorted({split_note(note)[1] for note in rows.loc[rows["ci_low"].notna(), "note"]} - {""})
    return f"[low, high]: 95% intervals, {'; '.join(ways)}. " if ways else ""


def number_text(shown: float, column: Column) -> str:
    """A value already × factor, with the column's digits and sign."""
    return f"{shown:{'+' if column.signed else ''}.{column.digits}f}"


def summarise(rows: pd.DataFrame, column: Column, table: Table) -> Cell:
    """Mean (± sample std over seeds) of the rows' values, or one row's value with its 95% interval when the column
    shows intervals; the rows' notes become one footnote."""
    values = rows["value"].to_numpy(dtype=float) * column.factor
    present = values[~np.isnan(values)]
    notes = {split_note(note)[0] if column.show_interval else note for note in rows["note"]}
    notes = sorted(notes - {""})
    if len(present) and len(present) < len(values):
        notes.append(f"mean over the {len(present)} of {len(values)} seeds that have a value")
    footnote = table.footnote("; ".join(notes)) if notes else None
    if not len(present):
        return Cell(DASH, footnote=footnote)
    mean = float(present.mean())
    text = number_text(mean, column) + column.unit
    if len(present) > 1 and column.show_std:
        text += f" ± {present.std(ddof=1):.{column.digits}f}"
    elif len(rows) == 1 and column.show_interval and not np.isnan(rows["ci_low"].iloc[0]):
        low, high = (number_text(rows[bound].iloc[0] * column.factor, column) for bound in ("ci_low", "ci_high"))
        text += f" [{low}, {high}]"
    return Cell(text, mean, footnote=footnote)


def best_index(cells: list[Cell], column: Column) -> list[int]:
    """Indexes of the cells whose value, rounded as shown, is the best (several on a tie; none for an unmarked
    column or no values)."""
    shown = {i: round(cell.number, column.digits) for i, cell in enumerate(cells) if not np.isnan(cell.number)}
    if column.direction == 0 or not shown:
        return []
    best = max(shown.values()) if column.direction > 0 else min(shown.values())
    return [i for i, value in shown.items() if value == best]


def interval_cell(value: float, low: float, high: float, digits: int, unit: str = "", signed: bool = False) -> Cell:
    """A value with its 95% interval, e.g. '+1.2% [−3.4, +5.8]' (just the value when the interval is missing, "—"
    when the value is)."""
    if np.isnan(value):
        return Cell(DASH)
    spec = f"{'+' if signed else ''}.{digits}f"
    text = f"{value:{spec}}{unit}"
    if not (np.isnan(low) or np.isnan(high)):
        text += f" [{low:{spec}}, {high:{spec}}]"
    return Cell(text, value)


def mark_best(cells: list[Cell], column: Column) -> None:
    """Bold every cell whose value, rounded as shown, is the best in the list (ties all bold)."""
    for index in best_index(cells, column):
        cells[index].bold = True


def mark_best_separated(cells: list[Cell], column: Column, separated: Callable[[int, int], bool]) -> None:
    """Bold the best cell only when it is the single best as shown and `separated(best, other)` (its 95% interval
    against that cell excludes a tie) holds for every other cell with a value: a lead the intervals cannot tell
    from a tie is not marked."""
    best = best_index(cells, column)
    if len(best) != 1:
        return
    others = [i for i, cell in enumerate(cells) if i != best[0] and not np.isnan(cell.number)]
    cells[best[0]].bold = all(separated(best[0], other) for other in others)


def interval_hull(rows: pd.DataFrame) -> tuple[float, float] | None:
    """The interval spanning the rows' 95% intervals (one per seed), or None when there are no rows or one has
    none."""
    if rows.empty or rows["ci_low"].isna().any():
        return None
    return float(rows["ci_low"].min()), float(rows["ci_high"].max())


def intervals_apart(first: pd.DataFrame, second: pd.DataFrame) -> bool:
    """Whether two sets of rows have intervals (`interval_hull`) that do not overlap: a conservative test that their
    values differ (False when either has no interval)."""
    a, b = interval_hull(first), interval_hull(second)
    return a is not None and b is not None and (a[1] < b[0] or b[1] < a[0])


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
#                              Markdown and LaTeX                               #
#################################################################################

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "—": "---",
          "–": "--", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "×": r"$\times$", "³": r"$^3$",
          "✓": r"$\checkmark$", "Å": r"\AA{}", "α": r"$\alpha$", "β": r"$\beta$",
          "Δ": r"$\Delta$"}


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
#                                    Writing                                    #
#################################################################################

Layout = Callable[..., Table]  # (rows of one experiment, table name, **options) -> Table


def write_tables(results: pd.DataFrame, layout: Layout, out_dir: Path, experiment: str | None = None,
                 **options) -> list[Path]:
    """Render one table per experiment (or just `experiment`) in `layout` to {name}.md and {name}.tex; return the
    paths.

    Every table is rendered before any is written, so an experiment that does not fit the layout leaves all the
    existing tables as they were.
    """
    check_one_kind(results, f"table rows for {out_dir}")
    experiments = sorted(set(results["experiment"]))
    if experiment is not None and experiment not in experiments:
        raise ResultsError(f"no rows for experiment {experiment!r}; the results have {experiments}")
    texts = {}
    for name in [experiment] if experiment else experiments:
        table = layout(results[results["experiment"] == name], re.sub(r"[^\w.-]", "_", name), **options)
        for suffix, render in ((".md", to_markdown), (".tex", to_latex)):
            texts[out_dir / f"{table.name}{suffix}"] = render(table)
    for path, text in texts.items():
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return list(texts)
