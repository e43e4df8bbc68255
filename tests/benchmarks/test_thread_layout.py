"""The thread-layout benchmark: which layouts fill the cores, and how concurrent processes' rates add up."""

from benchmarks.thread_layout import layouts, summarise


def test_layouts_fill_the_cores_exactly():
    assert layouts(2) == [(1, 2), (2, 1)]
    assert layouts(6) == [(1, 6), (2, 3), (3, 2), (6, 1)]
    assert layouts(1) == [(1, 1)]


def test_concurrent_processes_rates_are_summed_per_workload():
    row = {"batch_size": "32", "precision": "fp32", "model": "DiT"}
    rows = [{**row, "workload": "train", "images_per_s": "190.0"},
            {**row, "workload": "train", "images_per_s": "200.0"},
            {**row, "workload": "sample_ddim50_cfg", "images_per_s": "9.0"},
            {**row, "workload": "sample_ddim50_cfg", "images_per_s": "8.0"}]
    summary = {r["workload"]: r for r in summarise(2, 2, 1, rows)}
    assert summary["train"]["images_per_s"] == 390.0 and summary["train"]["images_per_s_per_process"] == 195.0
    assert summary["sample_ddim50_cfg"]["images_per_s"] == 17.0
    assert summary["train"]["processes"] == 2 and summary["train"]["threads_per_process"] == 1
