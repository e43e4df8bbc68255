"""Render the numbers of the README and the results pages from the committed results, between markers.

    python -m benchmarks.render_docs --scale mini README.md docs/results-mini.md          # rewrite the blocks
    python -m benchmarks.render_docs --scale mini --check README.md docs/results-mini.md  # exit 1 if stale

A block is the text between `<!-- render: KIND [ARG] -->` and `<!-- /render -->`; everything outside the blocks is
hand-written and holds no measured number. Kinds:

- `ledger TIER`: the summary table of `results/SCALE/claims/TIER.csv` (claim, paper, ours with its interval, verdict);
- `table NAME`: `results/SCALE/tables/NAME.md` as the DAG rendered it, its footnotes renamed `[^NAME-N]` so that
  several tables share a page;
- `runs`: each run of the main job from `results/SCALE/run_times.csv` (targets, wall and CPU time, jobs, commit);
  `runs last-commit`: only the runs made at the commit of the last one, with a summed line for each run made in
  several starts (consecutive rows of the same targets);
- `rules`: the costliest rules of `results/SCALE/timing.csv` (jobs, summed wall and CPU seconds);
- `bench NAME`: `results/bench/NAME.md`, a measurement's table as its benchmark CLI wrote it (throughput, threads).

A block whose results file is not committed renders as a line naming that file, so a page never shows numbers from
results that are not in the repository. `--check` rewrites nothing and prints a diff of every stale block (the test
suite runs it on the committed files).
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from pathlib import Path

from tunebench.cli import run_cli
from tunebench.config import ConfigError

BLOCK = re.compile(r"(<!-- render: (?P<kind>\w+)(?: (?P<arg>[\w-]+))? -->\n)(?P<body>.*?)(<!-- /render -->)",
                   re.DOTALL)
TOP_RULES = 8


class RenderError(ConfigError):
    """A block names an unknown kind, or a page has no block; the message names it."""


class NotCommitted(Exception):
    """The results file a block renders is not in the repository."""


def _csv(path: Path):
    """A CSV as a DataFrame (NotCommitted when the file is missing)."""
    import pandas as pd

    if not path.is_file():
        raise NotCommitted(path)
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def not_committed(path: Path) -> str:
    """The body of a block whose results file is missing."""
    return (f"*Not in the repository yet: `{path}` has not been regenerated from the current code and pinned assets "
            "(`bash scripts/main.sh`, then commit `results/`).*\n")


def render_ledger(results: Path, tier: str) -> str:
    """The ledger's summary table."""
    from benchmarks.ledger_page import summary_table

    return summary_table(_csv(results / "claims" / f"{tier}.csv").to_dict("records"))


def committed_markdown(path: Path) -> str:
    """A committed Markdown file ending in a newline (NotCommitted when it is missing)."""
    if not path.is_file():
        raise NotCommitted(path)
    text = path.read_text()
    return text if text.endswith("\n") else text + "\n"


def render_table(results: Path, name: str) -> str:
    """A rendered table with its footnote labels prefixed by its name."""
    text = committed_markdown(results / "tables" / f"{name}.md")
    return re.sub(r"\[\^(\w+)\]", lambda match: f"[^{name}-{match[1]}]", text)


def render_bench(results: Path, name: str) -> str:
    """A benchmark's table from results/bench/, beside the per-scale folders."""
    return committed_markdown(results.parent / "bench" / f"{name}.md")


def target_names(targets: str, scale: str) -> str:
    """A run's targets (space-separated rule names, or files relative to the repository) for a table cell,
    comma-separated: files in code, those under results/SCALE/ named relative to it, and those under runs/SCALE/
    (intermediates asked for by name) counted, not listed."""
    prefix, runs = f"results/{scale}/", f"runs/{scale}/"
    names = [f"`{target.removeprefix(prefix)}`" if "/" in target else target for target in targets.split()
             if not target.startswith(runs)]
    intermediates = sum(target.startswith(runs) for target in targets.split())
    if intermediates:
        names.append(f"{intermediates} intermediate{'s' if intermediates > 1 else ''} under `{runs}`")
    return ", ".join(names)


def render_runs(results: Path, which: str | None) -> str:
    """One line per run of the main job; with `which` "last-commit", only the runs made at the last run's commit
    (the current regeneration, without the history before it)."""
    runs = _csv(results / "run_times.csv")
    if which == "last-commit":
        runs = runs[runs["git_commit"] == runs["git_commit"].iloc[-1]]
    elif which is not None:
        raise RenderError(f"unknown block 'runs {which}'; runs takes no argument or 'last-commit'")
    lines = ["| Targets | Wall (min) | Jobs | Job CPU (min) | Commit | Machine |",
             "| --- | ---: | ---: | ---: | --- | --- |"]
    lines += [_run_line(target_names(run["targets"], results.name), run) for run in runs.to_dict("records")]
    if which == "last-commit":
        lines += _summed_starts(runs, results.name)
    return "\n".join(lines) + "\n"


def _summed_starts(runs, scale: str) -> list[str]:
    """A summed line for each stretch of consecutive runs of the same targets at one commit and machine: a run that
    was stopped and resumed (its wall time is the sum of its starts' walls, since a resumed run skips every job that
    had finished). The same targets run again later, after other runs, are a new run, not a start."""
    keys = runs[["targets", "git_commit", "machine"]].astype(str)
    stretch = keys.ne(keys.shift()).any(axis=1).cumsum()
    lines = []
    for _, starts in runs.groupby(stretch, sort=True):
        if len(starts) > 1:
            first = starts.iloc[0]
            summed = {**first, **{column: starts[column].sum() for column in ("wall_s", "jobs_run", "job_cpu_s")}}
            lines.append(_run_line(f"{target_names(first['targets'], scale)}, {len(starts)} starts summed", summed))
    return lines


def _run_line(label: str, run) -> str:
    """One table line: `label`, then the run's wall and CPU minutes, jobs, short commit and machine."""
    return (f"| {label} | {run['wall_s'] / 60:.1f} | {run['jobs_run']} | {run['job_cpu_s'] / 60:.1f}"
            f" | `{str(run['git_commit'])[:10]}` | {run['machine']} |")


def render_rules(results: Path) -> str:
    """The costliest rules by summed wall time."""
    from benchmarks.timing import rule_totals

    timing = _csv(results / "timing.csv")
    totals = rule_totals(timing.to_dict("records"))
    lines = ["| Rule | Jobs | Wall, summed (min) | Longest job (min) | CPU (min) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for total in totals[:TOP_RULES]:
        lines.append(f"| {total['rule']} | {total['jobs']} | {total['wall_s'] / 60:.1f} | "
                     f"{total['max_wall_s'] / 60:.1f} | {total['cpu_s'] / 60:.1f} |")
    rest = totals[TOP_RULES:]
    if rest:
        lines.append(f"| {len(rest)} other rules | {sum(t['jobs'] for t in rest)} | "
                     f"{sum(t['wall_s'] for t in rest) / 60:.1f} | – | {sum(t['cpu_s'] for t in rest) / 60:.1f} |")
    return "\n".join(lines) + "\n"


def render_block(results: Path, kind: str, arg: str | None) -> str:
    """The body of one block."""
    renderers = {"ledger": lambda: render_ledger(results, arg or "all"), "table": lambda: render_table(results, arg),
                 "runs": lambda: render_runs(results, arg), "rules": lambda: render_rules(results),
                 "bench": lambda: render_bench(results, arg)}
    if kind not in renderers or (kind in ("table", "bench") and not arg):
        raise RenderError(f"unknown block '{kind} {arg or ''}'; kinds: ledger TIER, table NAME, bench NAME, runs "
                          "[last-commit], rules")
    try:
        return renderers[kind]()
    except NotCommitted as missing:
        return not_committed(missing.args[0])


def render_text(text: str, results: Path) -> str:
    """`text` with the body of every block rendered afresh."""
    return BLOCK.sub(lambda m: m[1] + render_block(results, m["kind"], m["arg"]) + m[5], text)


def main(argv: list[str] | None = None) -> None:
    """Rewrite (or with --check, compare) the blocks of each file."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render_docs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", type=Path, nargs="+", help="Markdown files with render blocks")
    parser.add_argument("--scale", default="mini", help="whose results: results/SCALE/ (default mini)")
    parser.add_argument("--results-root", type=Path, default=Path("results"), help="folder holding results/SCALE")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if a block is stale")
    args = parser.parse_args(argv)
    from tunebench.io import atomic_path

    stale = False
    for path in args.files:
        text = path.read_text()
        if not BLOCK.search(text):
            raise RenderError(f"{path} has no render block (<!-- render: KIND [ARG] --> ... <!-- /render -->)")
        rendered = render_text(text, args.results_root / args.scale)
        if rendered == text:
            continue
        if args.check:
            stale = True
            sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), rendered.splitlines(True),
                                                       f"{path} (committed)", f"{path} (rendered)"))
        else:
            with atomic_path(path) as tmp:
                tmp.write_text(rendered)
            print(f"rendered {path}")
    if stale:
        raise SystemExit("stale render blocks: run python -m benchmarks.render_docs with the same files")


if __name__ == "__main__":
    run_cli(main)
