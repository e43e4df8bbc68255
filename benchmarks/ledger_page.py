"""The claims ledger as Markdown: the summary table (claim, paper, ours with its interval, verdict) and the page
that adds how each verdict was reached. Rows are the ledger CSV's records (`benchmarks.ledger.LEDGER_COLUMNS`)."""

from __future__ import annotations

import math


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def number(value) -> str:
    """A number with three significant digits ('–' when there is none)."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3g}"


def summary_table(rows: list[dict]) -> str:
    """One line per claim: its id, statement, the paper's number, ours with its interval and the verdict."""
    lines = ["| Claim | Paper says | Paper | Ours [95% CI] | Verdict |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        ours = number(row["value"])
        if not math.isnan(row["ci_low"]):
            ours += f" [{number(row['ci_low'])}, {number(row['ci_high'])}]"
        lines.append(f"| {row['claim_id']} | {_cell(row['statement'])} | {number(row['paper_value'])} | {ours} | "
                     f"**{row['verdict']}** |")
    return "\n".join(lines) + "\n"


def ledger_markdown(rows: list[dict], scale: str) -> str:
    """The ledger page: the summary table, then each claim's measure, rule, detail, source and commits."""
    lines = [f"# Claims ledger ({scale})", "",
             "Each claim of the two papers, the number that tests it here with its 95% interval, and the verdict of "
             "a rule fixed before the numbers (`benchmarks/claims.py`). Intervals: Student t over datasets, seeds or "
             "conditions; paired bootstrap over test images; Newcombe's over protein samples (each row says which).",
             "", summary_table(rows), "## How each verdict was reached", ""]
    for row in rows:
        lines += [f"- **{row['claim_id']}** ({row['paper']}). Ours: {_cell(row['measure'])}. Rule: {row['rule']}. "
                  f"Measured: {row['detail']}."
                  + (f" Paper: {row['paper_note']} ({row['paper_source']})." if row["paper_source"] else "")
                  + (f" From commit {row['evidence_commits']}." if row["evidence_commits"] else "")]
    return "\n".join(lines) + "\n"
