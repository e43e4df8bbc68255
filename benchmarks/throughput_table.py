"""The throughput benchmark's CSV columns and its Markdown table, without torch: `benchmarks.throughput_bench` writes
rows with them, and `benchmarks.gpu_check` renders rows read back from its CSVs (values then are strings)."""

from __future__ import annotations

COLUMNS = ("workload", "scale", "model", "resolution", "batch_size", "precision", "compile", "gradient_checkpointing",
           "channels_last", "sdpa", "sampler_steps", "guidance", "seeds", "iterations", "seconds", "images_per_s",
           "gflops_per_image", "achieved_tflops", "peak_tflops", "mfu", "peak_memory_gib", "warmup_seconds",
           "load_avg_1min", "device", "torch", "diffusers", "git_commit", "note")
AGREEMENT_COLUMNS = ("quantity", "scale", "model", "batch_size", "reference", "precision", "rel_rms_error",
                     "max_abs_error", "tolerance", "within_tolerance", "device", "git_commit", "note")

# The issue's goals on one H100 for DiT-XL/2 at 256 px (images/s), shown beside the paper-scale rows.
GOALS = {"train": 300.0, "sample_ddim50_cfg": 13.0}


def is_on(value) -> bool:
    """A switch column's value, as measured (a bool) or read back from the CSV ('True'/'False')."""
    return str(value) == "True"


def number(value) -> float | None:
    """A numeric column's value, or None where it is empty (not measurable, e.g. MFU without a known peak)."""
    return None if value in ("", None) else float(value)


def shown(value: float | None, spec: str) -> str:
    """A number in the table's format, or a dash for none."""
    return "–" if value is None else format(value, spec)


def render_table(rows: list[dict]) -> str:
    """A Markdown summary of the measurements (the README's table): one line per row, the goal where one is set."""
    if not rows:
        return "no measurements\n"
    lines = [f"Device: {rows[0]['device']}; torch {rows[0]['torch']}, diffusers {rows[0]['diffusers']}; "
             f"commit {str(rows[0]['git_commit'])[:8]}.", "",
             "| workload | model | batch | precision | compile | images/s | GFLOPs/image | MFU | peak GiB | goal |",
             "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        rate = number(row["images_per_s"])
        goal = GOALS.get(row["workload"]) if row["scale"] == "paper" else None
        verdict = f"≥ {goal:g} ({'met' if rate >= goal else 'not met'})" if goal and rate is not None else ""
        lines.append(f"| {row['workload']} | {row['model']} | {row['batch_size']} | {row['precision']} | "
                     f"{'on' if is_on(row['compile']) else 'off'} | {shown(rate, '.2f')} | "
                     f"{shown(number(row['gflops_per_image']), '.1f')} | {shown(number(row['mfu']), '.1%')} | "
                     f"{row['peak_memory_gib'] or '–'} | {verdict} |")
    return "\n".join(lines) + "\n"
