"""How to spend a machine's cores on the DAG's jobs: one multi-thread job, or several one-thread jobs side by side.

    python -m benchmarks.thread_layout --cores 2 --model assets/mini/source_dit \
        --out results/bench/thread-layout-cpu-mini.csv

For each layout it runs `python -m benchmarks.throughput` (the suite's own training step and DDIM-50 sampler with
guidance, fp32, batch 32) as `processes` concurrent processes of `threads` threads each, with
`processes × threads = cores`, and writes one row per (layout, workload): the images per second of all processes
together. Snakemake runs `cores / job_threads` jobs at a time, so the layout with the most images per second is the
`job_threads` to choose (config `job_threads`, docs/workflow.md). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tunebench.cli import run_cli
from tunebench.io import cpu_name, git_commit, write_csv

WORKLOADS = ("train", "sample_ddim50_cfg")
COLUMNS = ("workload", "cores", "processes", "threads_per_process", "images_per_s", "images_per_s_per_process",
           "batch_size", "precision", "model", "device", "git_commit")


def layouts(cores: int) -> list[tuple[int, int]]:
    """Every (processes, threads) with processes × threads = cores, fewest processes first."""
    return [(cores // threads, threads) for threads in range(cores, 0, -1) if cores % threads == 0]


def run_layout(processes: int, threads: int, model: str | None, scratch: Path) -> list[dict]:
    """Start `processes` throughput benchmarks of `threads` threads at once; return every process's rows."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    outs = [scratch / f"p{processes}x{threads}-{i}.csv" for i in range(processes)]
    command = [sys.executable, "-m", "benchmarks.throughput", "--scale", "mini", "--device", "cpu",
               "--workloads", ",".join(WORKLOADS), "--batch-sizes", "32", "--precisions", "fp32",
               "--iterations", "20", "--sample-repeats", "2", "--no-agreement",
               *(["--model", model] if model else [])]
    running = [subprocess.Popen([*command, "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True) for out in outs]
    for process in running:
        _, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"benchmarks.throughput failed ({processes} × {threads} threads):\n{err[-2000:]}")
    rows = []
    for out in outs:
        with open(out, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def summarise(cores: int, processes: int, threads: int, rows: list[dict]) -> list[dict]:
    """One row per workload: images/s summed over the layout's concurrent processes."""
    summary = []
    for workload in WORKLOADS:
        rates = [float(r["images_per_s"]) for r in rows if r["workload"] == workload]
        first = next(r for r in rows if r["workload"] == workload)
        summary.append({"workload": workload, "cores": cores, "processes": processes, "threads_per_process": threads,
                        "images_per_s": round(sum(rates), 2),
                        "images_per_s_per_process": round(sum(rates) / len(rates), 2),
                        "batch_size": first["batch_size"], "precision": first["precision"], "model": first["model"],
                        "device": cpu_name(), "git_commit": git_commit()})
    return summary


def main(argv: list[str] | None = None) -> None:
    """Measure every layout of --cores and write the CSV."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.thread_layout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="cores to fill (default: all)")
    parser.add_argument("--model", default=None, help="a DiT save_pretrained folder (default: random weights)")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args(argv)
    if args.cores < 1:
        parser.error("--cores must be at least 1")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for processes, threads in layouts(args.cores):
            rows += summarise(args.cores, processes, threads, run_layout(processes, threads, args.model, Path(scratch)))
    write_csv(args.out, COLUMNS, rows)
    for row in rows:
        print(f"{row['workload']}: {row['processes']} × {row['threads_per_process']} threads: "
              f"{row['images_per_s']} images/s")


if __name__ == "__main__":
    run_cli(main)
