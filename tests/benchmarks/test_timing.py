"""The per-job timing summary of a DAG run (benchmarks.timing, benchmarks.timing_summary)."""

import csv
import json
import os
from datetime import datetime, timezone

import pytest

from benchmarks import timing_summary
from benchmarks.timing import TimingError, rule_totals, run_record, timing_rows

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_benchmark(path, wall: float, cpu: float, rss: str = "812.5") -> None:
    """A benchmark file in Snakemake's layout (one repeat)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t{rss}\t900\t800\t805\t0.1\t2.0\t97.5\t{cpu}\n")


@pytest.fixture
def benchmarks(tmp_path):
    """A run's benchmark folder: a once-only rule, and a rule with two jobs under nested wildcards."""
    folder = tmp_path / "runs/mini/benchmarks"
    write_benchmark(folder / "pretrain_source.tsv", 1200.25, 2350.5)
    write_benchmark(folder / "finetune/mnist5k/full_ft.tsv", 150.0, 290.0)
    write_benchmark(folder / "finetune/mnist5k/diff_tuning.tsv", 170.5, 330.0, rss="-")
    return folder


def test_rows_name_rule_and_job_and_carry_the_measured_values(benchmarks):
    rows = timing_rows(benchmarks)
    assert [(row["rule"], row["job"]) for row in rows] == [
        ("finetune", "mnist5k/diff_tuning"), ("finetune", "mnist5k/full_ft"), ("pretrain_source", "")]
    ended = datetime.fromtimestamp((benchmarks / "pretrain_source.tsv").stat().st_mtime, timezone.utc)
    assert rows[2] == {"rule": "pretrain_source", "job": "", "wall_s": 1200.25, "cpu_s": 2350.5,
                       "max_rss_mb": 812.5, "mean_load": 97.5, "ended_utc": ended.isoformat(timespec="seconds")}
    assert rows[0]["max_rss_mb"] is None  # Snakemake's '-': not measured


def test_totals_per_rule_costliest_first(benchmarks):
    totals = rule_totals(timing_rows(benchmarks))
    assert totals == [
        {"rule": "pretrain_source", "jobs": 1, "wall_s": 1200.25, "max_wall_s": 1200.25, "cpu_s": 2350.5},
        {"rule": "finetune", "jobs": 2, "wall_s": 320.5, "max_wall_s": 170.5, "cpu_s": 620.0}]


def test_cli_writes_one_row_per_job_and_prints_totals(benchmarks, tmp_path, capsys):
    out = tmp_path / "results/mini/timing.csv"
    timing_summary.main([str(benchmarks), "--out", str(out)])
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["job"] for row in rows] == ["mnist5k/diff_tuning", "mnist5k/full_ft", ""]
    assert rows[1]["wall_s"] == "150.0" and rows[0]["max_rss_mb"] == ""
    printed = capsys.readouterr().out
    assert "finetune" in printed and "3 jobs, 1520.8 s wall in all" in printed


def test_bad_files_are_named(tmp_path):
    with pytest.raises(TimingError, match="run the workflow first"):
        timing_rows(tmp_path / "missing")
    (tmp_path / "empty.tsv").write_text(HEADER)
    with pytest.raises(TimingError, match="empty.tsv: empty"):
        timing_rows(tmp_path)
    (tmp_path / "empty.tsv").write_text("wall\n3\n")
    with pytest.raises(TimingError, match="no 's' column"):
        timing_rows(tmp_path)


def test_run_record_counts_only_the_jobs_of_this_run(benchmarks):
    old = benchmarks / "pretrain_source.tsv"
    os.utime(old, (1_000_000_000, 1_000_000_000))  # a job of an earlier run, still in the folder
    started = 1_700_000_000.0
    for path in benchmarks.glob("finetune/*/*.tsv"):
        os.utime(path, (started + 60, started + 60))
    record = run_record(timing_rows(benchmarks), ["all"], started, started + 3600.04)
    assert record["targets"] == "all" and record["wall_s"] == 3600.0
    assert record["jobs_run"] == 2 and record["job_wall_s"] == 320.5 and record["job_cpu_s"] == 620.0
    assert record["started_utc"] == "2023-11-14T22:13:20+00:00" and "cores)" in record["machine"]


def test_cli_appends_one_row_per_run(benchmarks, tmp_path):
    started = tmp_path / "run-started.json"
    runs = tmp_path / "results/mini/run_times.csv"
    for target in ("headline", "all"):
        started.write_text(json.dumps({"started": 0.0, "targets": [target]}))
        timing_summary.main([str(benchmarks), "--out", str(tmp_path / "timing.csv"), "--run-started", str(started),
                             "--runs-out", str(runs)])
    with runs.open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["targets"] for row in rows] == ["headline", "all"] and rows[1]["jobs_run"] == "3"
    with pytest.raises(SystemExit):
        timing_summary.main([str(benchmarks), "--out", str(runs), "--runs-out", str(runs)])
