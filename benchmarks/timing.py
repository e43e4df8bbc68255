"""Per-job wall and CPU time of a DAG run, from the Snakemake `benchmark:` files its rules write.

Every rule writes `runs/<scale>/benchmarks/<rule>[/<wildcard>/…].tsv` (Snakemake's columns: s, h:m:s, max_rss,
…, mean_load, cpu_time). `timing_rows` turns a benchmarks folder into one row per job (its end time is the file's
modification time); `rule_totals` sums them per rule; `run_record` is one row of a whole run: its wall time from
start to finish (what the budgets are about, with jobs running side by side), the jobs it ran, the commit and the
machine. Reads only text files (no torch), so it runs in moments after a run.
"""

from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from tunebench.io import FileFormatError, cpu_name, git_commit

COLUMNS = ("rule", "job", "wall_s", "cpu_s", "max_rss_mb", "mean_load", "ended_utc")
RUN_COLUMNS = ("targets", "started_utc", "ended_utc", "wall_s", "jobs_run", "job_wall_s", "job_cpu_s", "git_commit",
               "machine")


class TimingError(FileFormatError):
    """A benchmark folder or file that is not what Snakemake writes (CLIs report it in one line, exit status 2)."""


def _number(record: dict[str, str], key: str, path: Path) -> float | None:
    """The column's value as a float; None where Snakemake wrote '-' (not measured), an error naming the file else."""
    value = record.get(key)
    if value is None:
        raise TimingError(f"{path}: no '{key}' column; is it a Snakemake benchmark file?")
    if value.strip() == "-":
        return None
    try:
        return float(value)
    except ValueError:
        raise TimingError(f"{path}: column '{key}' is {value!r}, not a number") from None


def read_benchmark(path: Path) -> dict[str, float | None]:
    """One benchmark file's wall seconds, CPU seconds, peak RSS (MB) and mean load (the first repeat's)."""
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle, delimiter="\t"))
    if not records:
        raise TimingError(f"{path}: empty; rerun its rule to measure it again")
    record = records[0]
    return {"wall_s": _number(record, "s", path), "cpu_s": _number(record, "cpu_time", path),
            "max_rss_mb": _number(record, "max_rss", path), "mean_load": _number(record, "mean_load", path)}


def timing_rows(folder: Path) -> list[dict]:
    """One row per benchmark file under `folder`, sorted by rule and job: the rule is the first path part, the job
    the rest (its wildcards), '' for a rule that runs once."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TimingError(f"{folder} is not a folder of benchmark files; run the workflow first")
    rows = []
    for path in sorted(folder.rglob("*.tsv")):
        parts = path.relative_to(folder).with_suffix("").parts
        rule, job = (parts[0], "/".join(parts[1:])) if len(parts) > 1 else (parts[0], "")
        rows.append({"rule": rule, "job": job, **read_benchmark(path), "ended_utc": utc(path.stat().st_mtime)})
    return rows


def utc(timestamp: float) -> str:
    """A POSIX time as ISO 8601 UTC to the second."""
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def run_record(rows: list[dict], targets: list[str], started: float, ended: float) -> dict:
    """One run of the DAG: its wall time from `started` to `ended` (POSIX seconds), the jobs among `rows` that
    finished inside it (earlier runs' files are still in the folder) with their summed wall and CPU seconds, the
    commit and the machine."""
    inside = [row for row in rows if row["ended_utc"] >= utc(started)]
    return {"targets": " ".join(targets), "started_utc": utc(started), "ended_utc": utc(ended),
            "wall_s": round(ended - started, 1), "jobs_run": len(inside),
            "job_wall_s": round(sum(row["wall_s"] or 0 for row in inside), 1),
            "job_cpu_s": round(sum(row["cpu_s"] or 0 for row in inside), 1), "git_commit": git_commit(),
            "machine": cpu_name()}


def rule_totals(rows: list[dict]) -> list[dict]:
    """Per rule: jobs, summed and largest wall seconds, summed CPU seconds; the costliest rule first."""
    totals: dict[str, dict] = {}
    for row in rows:
        total = totals.setdefault(row["rule"], {"rule": row["rule"], "jobs": 0, "wall_s": 0.0, "max_wall_s": 0.0,
                                                "cpu_s": 0.0})
        total["jobs"] += 1
        total["wall_s"] += row["wall_s"] or 0.0
        total["max_wall_s"] = max(total["max_wall_s"], row["wall_s"] or 0.0)
        total["cpu_s"] += row["cpu_s"] or 0.0
    return sorted(totals.values(), key=lambda total: -total["wall_s"])
