"""Write the claims ledger: every claim of both papers, the paper's number and source, ours with its 95% interval,
the verdict rule and the verdict (`benchmarks.claims`), as a CSV and a Markdown page.

    python -m benchmarks.ledger --results results/mini/difftune_main.csv results/mini/deft_main.csv ... \\
        --curves results/mini/forgetting.csv --paper-reference results/paper_reference.csv \\
        --tasks inpaint,sr4,hdr,phase_retrieval,nonlinear_deblur \\
        --out-csv results/mini/claims/headline.csv --out-md results/mini/claims/headline.md

Results files are known by their names (`difftune_main.csv` → `difftune_main`); a claim whose files are not given
is `not measured`. Curves (`forgetting.csv`) are long CSVs outside the results schema, hence `--curves`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tunebench.cli import run_cli

LEDGER_COLUMNS = ("claim_id", "paper", "statement", "paper_value", "paper_note", "paper_source", "measure", "value",
                  "ci_low", "ci_high", "n", "rule", "verdict", "detail", "evidence_commits", "scale", "git_commit")


def ledger_rows(claims, inputs, reference, scale: str, commit: str) -> list[dict]:
    """One row per claim: the paper's side from `reference`, ours from `benchmarks.claims.judge`."""
    from benchmarks.claims import judge
    from benchmarks.paper_reference import paper_value

    rows = []
    for claim in claims:
        paper = paper_value(reference, *claim.paper_key) if claim.paper_key else None
        measured = judge(claim, inputs)
        rows.append({
            "claim_id": claim.claim_id, "paper": claim.paper, "statement": claim.statement,
            "paper_value": None if paper is None else paper["value"],
            "paper_note": "" if paper is None else paper["note"],
            "paper_source": "" if paper is None else paper["source"],
            "measure": claim.measure, "value": measured.value, "ci_low": measured.ci_low, "ci_high": measured.ci_high,
            "n": measured.n, "rule": claim.rule, "verdict": measured.verdict, "detail": measured.detail,
            "evidence_commits": " ".join(measured.commits), "scale": scale, "git_commit": commit})
    return rows


def main(argv: list[str] | None = None) -> None:
    """Judge every claim on the given results and write the ledger CSV and page."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ledger", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, nargs="*", default=[], help="results CSVs (known by file name)")
    parser.add_argument("--curves", type=Path, nargs="*", default=[], help="curve CSVs (forgetting.csv)")
    parser.add_argument("--paper-reference", type=Path, required=True, help="results/paper_reference.csv")
    parser.add_argument("--tasks", required=True, help="DEFT's image tasks, comma-separated (one claim row each)")
    parser.add_argument("--scale", required=True, help="the scale the results belong to (smoke, mini, paper)")
    parser.add_argument("--out-csv", type=Path, required=True, help="ledger CSV to write")
    parser.add_argument("--out-md", type=Path, required=True, help="ledger Markdown page to write")
    args = parser.parse_args(argv)
    import pandas as pd  # after parsing, so --help answers at once

    from benchmarks.claims import paper_claims
    from benchmarks.ledger_page import ledger_markdown
    from benchmarks.paper_reference import read_paper_reference
    from benchmarks.results import read_results
    from tunebench.io import atomic_path, git_commit

    inputs = {path.stem: read_results(path) for path in args.results}
    inputs |= {path.stem: pd.read_csv(path) for path in args.curves}
    rows = ledger_rows(paper_claims(args.tasks.split(",")), inputs, read_paper_reference(args.paper_reference),
                       args.scale, git_commit())
    args.out_csv.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out_csv) as tmp:
        pd.DataFrame(rows, columns=list(LEDGER_COLUMNS)).to_csv(tmp, index=False)
    with atomic_path(args.out_md) as tmp:
        Path(tmp).write_text(ledger_markdown(rows, args.scale))
    for row in rows:
        print(f"{row['claim_id']}: {row['verdict']}")


if __name__ == "__main__":
    run_cli(main)
