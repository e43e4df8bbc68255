"""The report of `scripts/gpu-check.sh`, without torch: the throughput grid's rows (compile off, then on) and one row
per pipeline step (latent cache, fine-tune, sampling) in the throughput CSV's columns, the fp32-vs-bf16 agreement,
which grid rows are missing and why, and each step's status and wall time, as OUT.csv, OUT.md and
OUT_agreement.csv.

The work folder holds what the steps wrote: grid-off.csv (+ _agreement.csv) and grid-on-PRECISION.csv from
`benchmarks.throughput`, inputs.json from `benchmarks.gpu_check inputs`, latents.json (the cache's sidecar),
finetune/ and samples/ from the CLIs, and timings.tsv (step, status, wall seconds; one line per step).
"""

from __future__ import annotations

import csv
import datetime
import itertools
import json
import shutil
from pathlib import Path

from benchmarks.throughput_settings import WORKLOADS
from benchmarks.throughput_table import AGREEMENT_COLUMNS, COLUMNS, is_on, render_table
from tunebench.config import PRECISIONS
from tunebench.io import atomic_path, read_json, write_csv

# The steps the script runs in one process, in order; then one grid_on_PRECISION step per precision (compile on).
PIPELINE_STEPS = ("grid", "inputs", "latents", "retention", "finetune", "sample")
STEPS = {  # what each step of the script runs, for the report's step table
    "grid": "`benchmarks.throughput`, compile off, and the fp32-vs-bf16 agreement",
    "inputs": "`benchmarks.gpu_check inputs`: random DiT and VAE (no --model), synthetic image folder",
    "latents": "`tunebench.latents`: the images' VAE posteriors, both flips",
    "retention": "`difftune.retention --kind source`: a retention set from the images",
    "finetune": "`difftune.finetune`: Diff-Tuning from the latent cache",
    "sample": "`tunebench.sample`: DDIM-50 with guidance from the fine-tuned export",
    "grid_on_bf16": "`benchmarks.throughput`, compile on, bf16 (under the time left)",
    "grid_on_tf32": "`benchmarks.throughput`, compile on, tf32 (under the time left)",
}
PIPELINE_WORKLOADS = ("cache_latents", "finetune_diff_tuning", "sample_cli_ddim50_cfg")


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV as string dicts; none when the file is absent (its step failed or was cut off)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_timings(path: Path) -> dict[str, tuple[str, float]]:
    """step → (status, wall seconds), from timings.tsv."""
    timings = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                name, status, seconds = line.split("\t")
                timings[name] = (status, float(seconds))
    return timings


def grid_rows(work: Path) -> list[dict]:
    """The throughput rows of every grid step, in workload, batch, precision, compile order."""
    rows = read_csv(work / "grid-off.csv")
    for path in sorted(work.glob("grid-on-*.csv")):
        rows += read_csv(path)
    return sorted(rows, key=lambda row: (WORKLOADS.index(row["workload"]), int(row["batch_size"]),
                                         PRECISIONS.index(row["precision"]), is_on(row["compile"])))


def grid_step(precision: str, compile_on: bool) -> str:
    """The script step that measures one grid cell."""
    return f"grid_on_{precision}" if compile_on else "grid"


def missing_grid(rows: list[dict], workloads, batch_sizes, precisions, compiles, timings) -> list[str]:
    """One line per expected grid cell without a row, with the status of the step that should have made it."""
    found = {(row["workload"], int(row["batch_size"]), row["precision"], is_on(row["compile"])) for row in rows}
    missing = []
    for cell in itertools.product(workloads, batch_sizes, precisions, compiles):
        if cell not in found:
            workload, batch, precision, compile_on = cell
            step = grid_step(precision, compile_on)
            status = timings.get(step, ("not run", 0.0))[0]
            missing.append(f"{workload}, batch {batch}, {precision}, compile {'on' if compile_on else 'off'}: "
                           f"step `{step}` {status}")
    return missing


def base_row(info: dict, workload: str, model: str) -> dict:
    """A pipeline row with the columns every row shares filled and the rest empty."""
    row = dict.fromkeys(COLUMNS, "")
    row.update({"workload": workload, "scale": info["scale"], "model": model, "resolution": info["resolution"],
                "compile": False, "gradient_checkpointing": False, "channels_last": False, "sdpa": "auto",
                "device": info["device"], "torch": info["torch"], "diffusers": info["diffusers"],
                "git_commit": info["git_commit"]})
    return row


def add_rate(row: dict, info: dict, images: int, seconds: float, gflops: float) -> dict:
    """Fill seconds, images/s, FLOPs and MFU (where the device's peak in the row's precision is known); a time too
    short to have been recorded (0 s) leaves the rates empty."""
    peak = info["peak_tflops"].get(row["precision"])
    row.update({"seconds": round(seconds, 4), "gflops_per_image": round(gflops, 3),
                "peak_tflops": round(peak, 1) if peak else ""})
    if seconds > 0:
        rate = images / seconds
        achieved = rate * gflops / 1e3
        row.update({"images_per_s": round(rate, 3), "achieved_tflops": round(achieved, 3),
                    "mfu": round(achieved / peak, 4) if peak else ""})
    return row


def training_precision(train: dict) -> str:
    """A training config's number format as the grid names it."""
    return "bf16" if train["mixed_precision"] == "bf16" else "tf32" if train["tf32"] else "fp32"


def latents_row(work: Path, info: dict) -> dict:
    """tunebench.latents: both flips of every image through the VAE encoder (its sidecar's encode time)."""
    sidecar = read_json(work / "latents.json")
    images = 2 * sidecar["shape"][0]
    row = base_row(info, "cache_latents", info["vae_model"])
    row.update({"batch_size": sidecar["batch_size"], "precision": training_precision(sidecar["config"]["train"]),
                "iterations": 1, "note": f"tunebench.latents: {sidecar['shape'][0]} images, each as is and flipped, "
                                         "through the VAE encoder; encode time from the cache's sidecar"})
    return add_rate(row, info, images, sidecar["encode_seconds"], info["encode_gflops_per_image"])


def finetune_row(work: Path, info: dict, wall: float) -> dict:
    """difftune.finetune: the steady rate of the steps after the first logged interval (which holds the warm-up)."""
    folder = work / "finetune"
    stats = [json.loads(line) for line in (folder / "stats.jsonl").read_text().splitlines() if line.strip()]
    config, summary = read_json(folder / "config.json"), read_json(folder / "summary.json")
    ends = [row["step"] for row in stats]
    intervals = [(end - start, (end - start) / row["steps_per_s"]) for start, end, row in zip([0, *ends], ends, stats)]
    timed = intervals[1:] or intervals
    steps, seconds = sum(n for n, _ in timed), sum(s for _, s in timed)
    train = config["train"]
    first = ends[0] + 1 if len(ends) > 1 else 1
    row = base_row(info, "finetune_diff_tuning", info["model"])
    row.update({"batch_size": train["batch_size"], "precision": training_precision(train),
                "compile": train["compile"], "gradient_checkpointing": train["gradient_checkpointing"],
                "iterations": steps, "warmup_seconds": round(intervals[0][1], 2) if len(intervals) > 1 else "",
                "note": f"difftune.finetune --method {summary['method']}: {summary['steps']} steps of "
                        f"{summary['target_per_batch']} target latents from the cache + "
                        f"{summary['retention_per_batch']} retention images encoded per step, AdamW + EMA; steps "
                        f"{first}-{ends[-1]} timed (stats.jsonl); the command took {wall:.0f} s with start-up, "
                        "loading, the final checkpoint and the export"})
    return add_rate(row, info, steps * train["batch_size"], seconds, info["train_gflops_per_image"])


def sample_row(work: Path, info: dict, wall: float) -> dict:
    """tunebench.sample from the fine-tuned export: images per wall second of the whole command."""
    protocol = read_json(work / "samples" / "protocol.json")["protocol"]
    sample = protocol["sample"]
    row = base_row(info, "sample_cli_ddim50_cfg", f"{info['model']}, fine-tuned")
    row.update({"batch_size": sample["batch_size"], "precision": sample["precision"], "compile": sample["compile"],
                "sampler_steps": sample["steps"], "guidance": sample["guidance_scale"], "seeds": protocol["seeds"],
                "iterations": 1, "note": f"tunebench.sample --seeds {protocol['seeds']}: {sample['sampler']} "
                                         f"{sample['steps']} steps, guidance {sample['guidance_scale']}, VAE decode "
                                         "and PNGs; wall time of the whole command, loading included"})
    return add_rate(row, info, protocol["n_samples"], wall, info["sample_gflops_per_image"])


def pipeline_rows(work: Path, info: dict, timings: dict) -> tuple[list[dict], list[str]]:
    """(a row for each pipeline step that finished, a line for each whose outputs could not be read): a GPU run's
    report is written whatever one step left behind."""
    builders = {"latents": lambda wall: latents_row(work, info),
                "finetune": lambda wall: finetune_row(work, info, wall),
                "sample": lambda wall: sample_row(work, info, wall)}
    rows, problems = [], []
    for step, build in builders.items():
        if timings.get(step, ("",))[0] == "ok":
            try:
                rows.append(build(timings[step][1]))
            except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError) as error:
                problems.append(f"step `{step}` finished but its outputs could not be read: {error!r}")
    return rows, problems


def agreement_table(rows: list[dict]) -> str:
    """The fp32-vs-bf16 agreement as Markdown."""
    if not rows:
        return "not measured (see the steps below)\n"
    lines = ["| quantity | batch | relative RMS error | max abs error | tolerance | within | note |",
             "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    lines += [f"| {r['quantity']} | {r['batch_size']} | {r['rel_rms_error']} | {r['max_abs_error']} | {r['tolerance']} "
              f"| {r['within_tolerance'] or '–'} | {r['note']} |" for r in rows]
    return "\n".join(lines) + "\n"


def render_report(info: dict, grid: list[dict], pipeline: list[dict], agreement: list[dict], missing: list[str],
                  timings: dict, elapsed: float, budget: float, command: str, problems: list[str] = ()) -> str:
    """The Markdown page of one run of the script."""
    weights = ("random (speed does not depend on them; the agreement of the samples is reported, not judged)"
               if info["weights"] == "random" else f"`{info['weights']}`")
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# Throughput check: {info['device']}", "",
             f"`{command}` at commit {info['git_commit'][:8]}, {when}: {elapsed:.0f} s in all (budget {budget:.0f} s)."
             f" Weights: {weights}. Pipeline data: {info['images']} synthetic {info['resolution']}-px images laid out"
             f" as `{info['dataset']}`.", "",
             "## Throughput grid (`benchmarks.throughput`)", "", render_table(grid).rstrip("\n"), ""]
    if missing:
        parts += ["Not measured:", "", *[f"- {line}" for line in missing], ""]
    parts += ["## Pipeline steps through the suite's CLIs", "", render_table(pipeline).rstrip("\n"), "",
              *[f"- `{row['workload']}`: {row['note']}." for row in pipeline],
              *[f"- {problem}" for problem in problems], "",
              "## bf16 against strict fp32", "", agreement_table(agreement).rstrip("\n"), "",
              "## Steps", "", "| step | what | status | wall s |", "| --- | --- | --- | ---: |",
              *[f"| {name} | {STEPS.get(name, '')} | {status} | {seconds:.1f} |"
                for name, (status, seconds) in timings.items()], ""]
    return "\n".join(parts)


def write_report(work: Path, out: Path, grid_spec: tuple, elapsed: float, budget: float, command: str) -> list[str]:
    """Write OUT.csv (grid and pipeline rows), OUT.md and OUT_agreement.csv; return the missing grid cells."""
    info = read_json(work / "inputs.json") if (work / "inputs.json").is_file() else None
    timings = read_timings(work / "timings.tsv")
    expected = [*PIPELINE_STEPS, *(f"grid_on_{precision}" for precision in grid_spec[2] if True in grid_spec[3])]
    unreached = ("not reached (the steps before it were cut off at the budget or crashed: see the log)", 0.0)
    timings.update({step: unreached for step in expected if step not in timings})
    grid = grid_rows(work)
    pipeline, problems = pipeline_rows(work, info, timings) if info else ([], [])
    agreement = read_csv(work / "grid-off_agreement.csv")
    missing = missing_grid(grid, *grid_spec, timings)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(out, COLUMNS, grid + pipeline)
    agreement_path = out.with_name(f"{out.stem}_agreement.csv")
    if agreement:
        shutil.copyfile(work / "grid-off_agreement.csv", agreement_path)
    else:
        write_csv(agreement_path, AGREEMENT_COLUMNS, [])
    if info is None:  # the inputs step failed: describe what is known
        first = grid[0] if grid else {}
        info = {"device": first.get("device", "unknown device"), "git_commit": first.get("git_commit", "unknown"),
                "weights": "unknown", "images": 0, "resolution": "?", "dataset": "?"}
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(render_report(info, grid, pipeline, agreement, missing, timings, elapsed, budget, command,
                                     problems))
    return missing
