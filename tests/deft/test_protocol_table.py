"""The protocol-switch table (layout `protocol` of deft.report): each switched run beside its default, the difference
computed from the rows, and the run names the DAG gives the switched runs."""

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.per_image import write_per_image
from benchmarks.results import RESULT_COLUMNS, ResultsError, append_rows, read_results
from deft import paired, report
from deft.protocol_runs import parse_run_name, run_name, switch_text
from deft.protocol_table import protocol_table, switch_differences

# (method, dataset, metric, value): two defaults and three switched runs, LPIPS skipped (no local weights).
ROWS = [
    ("deft", "inpaint", "psnr", 20.0), ("deft", "inpaint", "ssim", 0.700),
    ("deft@row1:task.gradient=exact_vjp", "inpaint", "psnr", 21.5),
    ("deft@row1:task.gradient=exact_vjp", "inpaint", "ssim", 0.650),
    ("deft@row8:head.block=diffusers_default", "inpaint", "psnr", 19.25),
    ("deft@row8:head.block=diffusers_default", "inpaint", "ssim", 0.712),
    ("ddrm", "sr4", "psnr", 24.0), ("ddrm", "sr4", "ssim", 0.800),
    ("ddrm@row14:task=sr4_bicubic", "sr4", "psnr", 23.0), ("ddrm@row14:task=sr4_bicubic", "sr4", "ssim", 0.825),
]


def results(tmp_path, rows=ROWS) -> pd.DataFrame:
    """The rows as one results CSV of experiment deft_protocol (each with a skipped LPIPS row), read back."""
    path = tmp_path / "deft_protocol.csv"
    base = {column: "" for column in RESULT_COLUMNS} | {"experiment": "deft_protocol", "seed": 0, "scale": "mini",
                                                         "n_samples": 100, "reference": "test-truth"}
    methods = {(method, dataset) for method, dataset, _, _ in rows}
    append_rows(path, [base | {"method": m, "dataset": d, "metric": metric, "value": v} for m, d, metric, v in rows]
                + [base | {"method": m, "dataset": d, "metric": "lpips", "value": None, "note": "no weights"}
                   for m, d in methods])
    return read_results(path)


def test_run_names_round_trip():
    name = run_name("deft", 7, switch_text({"head.init_scaling_bias": 0.01}))
    assert name == "deft@row7:head.init_scaling_bias=0.01"
    assert parse_run_name(name) == ("deft", 7, "head.init_scaling_bias=0.01")
    assert parse_run_name(run_name("dps", 14, switch_text({}, "sr4_bicubic"))) == ("dps", 14, "task=sr4_bicubic")
    assert parse_run_name("deft") is None


def test_differences_are_switched_minus_default(tmp_path):
    pairs = switch_differences(results(tmp_path), ["psnr", "ssim"])
    assert list(zip(pairs["row"], pairs["method"], pairs["metric"])) == [
        (1, "deft", "psnr"), (1, "deft", "ssim"), (8, "deft", "psnr"), (8, "deft", "ssim"),
        (14, "ddrm", "psnr"), (14, "ddrm", "ssim")]
    assert list(pairs["default"]) == [20.0, 0.7, 20.0, 0.7, 24.0, 0.8]
    assert list(pairs["difference"]) == pytest.approx([1.5, -0.05, -0.75, 0.012, -1.0, 0.025])


def test_table_leaves_out_an_lpips_that_was_never_measured(tmp_path):
    table = protocol_table(results(tmp_path), "deft_protocol")
    assert table.header == ["#", "Task", "Method", "Switch", "PSNR default", "PSNR switched", "ΔPSNR",
                            "SSIM default", "SSIM switched", "ΔSSIM"]
    assert [[cell.text for cell in row] for row in table.rows] == [
        ["1", "inpaint", "deft", "task.gradient=exact_vjp", "20.00", "21.50", "+1.50", "0.700", "0.650", "-0.050"],
        ["8", "inpaint", "deft", "head.block=diffusers_default", "20.00", "19.25", "-0.75", "0.700", "0.712",
         "+0.012"],
        ["14", "sr4", "ddrm", "task=sr4_bicubic", "24.00", "23.00", "-1.00", "0.800", "0.825", "+0.025"]]
    assert "plain difference" in table.caption and "n_samples=100" in table.caption


def test_lpips_columns_when_it_was_measured(tmp_path):
    rows = results(tmp_path)
    rows.loc[rows["metric"] == "lpips", "value"] = 0.25
    rows.loc[(rows["metric"] == "lpips") & (rows["method"] == "deft"), "value"] = 0.5
    table = protocol_table(rows, "deft_protocol")
    assert table.header[-3:] == ["LPIPS default", "LPIPS switched", "ΔLPIPS"]
    assert [cell.text for cell in table.rows[0][-3:]] == ["0.500", "0.250", "-0.250"]
    assert math.isclose(table.rows[0][-1].number, -0.25)


def test_a_switched_run_without_its_default_is_an_error(tmp_path):
    rows = results(tmp_path, [row for row in ROWS if row[0] != "ddrm"])
    with pytest.raises(ResultsError, match="no psnr row of ddrm on sr4: the switched run ddrm@row14"):
        protocol_table(rows, "deft_protocol")


def test_report_cli_writes_the_protocol_table(tmp_path):
    results(tmp_path)
    report.main(["table", "--results", str(tmp_path / "deft_protocol.csv"), "--layout", "protocol",
                 "--out-dir", str(tmp_path / "tables")])
    markdown = (tmp_path / "tables/deft_protocol.md").read_text()
    assert "| 14 | sr4 | ddrm | task=sr4_bicubic | 24.00 | 23.00 | -1.00 |" in markdown
    assert r"$\Delta$PSNR" in (tmp_path / "tables/deft_protocol.tex").read_text()


def test_paired_switch_rows_give_the_difference_its_interval(tmp_path):
    truth = np.random.default_rng(0).random((6, 4, 4, 3))
    default_psnr = np.array([20.0, 22.0, 18.0, 25.0, 21.0, 19.0])
    for name, shift in (("deft", 0.0), ("deft@row1:task.gradient=exact_vjp", 1.5)):
        write_per_image(tmp_path / f"{name}.per_image.csv", "inpaint", name, truth,
                        {"psnr": default_psnr + shift + np.arange(6) * 0.1 * (shift > 0), "ssim": np.full(6, 0.7),
                         "lpips": None})
    out = tmp_path / "paired.csv"
    paired.main(["--per-image", *map(str, sorted(tmp_path.glob("*.per_image.csv"))), "--protocol-switches",
                 "--experiment", "deft_protocol", "--out", str(out)])
    rows = read_results(out).set_index("metric")
    assert rows.loc["psnr_diff", "method"] == "deft@row1:task.gradient=exact_vjp"
    assert rows.loc["psnr_diff", "reference"] == "deft" and rows.loc["psnr_diff", "experiment"] == "deft_protocol"
    assert rows.loc["psnr_diff", "value"] == pytest.approx(1.75)  # 1.5 + mean of 0, 0.1, …, 0.5
    assert 1.5 < rows.loc["psnr_diff", "ci_low"] < 1.75 < rows.loc["psnr_diff", "ci_high"] < 2.0
    assert rows.loc["ssim_diff", "value"] == 0.0 and pd.isna(rows.loc["lpips_diff", "value"])
    table = protocol_table(pd.concat([results(tmp_path, ROWS[:4]), read_results(out)]), "deft_protocol")
    difference = table.rows[0][6]
    assert difference.text.startswith("+1.75 [") and difference.number == pytest.approx(1.75)
    assert "image-by-image difference" in table.caption and "bootstrap" in table.caption


def test_a_switched_run_without_a_default_to_pair_with_is_an_error(tmp_path):
    truth = np.zeros((2, 4, 4, 3))
    write_per_image(tmp_path / "switched.per_image.csv", "inpaint", "deft@row1:task.gradient=exact_vjp", truth,
                    {"psnr": np.ones(2), "ssim": np.ones(2), "lpips": None})
    with pytest.raises(ResultsError, match="no per-image scores of the default run of deft on inpaint"):
        paired.main(["--per-image", str(tmp_path / "switched.per_image.csv"), "--protocol-switches",
                     "--out", str(tmp_path / "out.csv")])


def test_caption_gives_switched_baselines_total_time_relative_to_deft(tmp_path):
    # RED-diff at run_commands.md's 100 steps on sr4 (row 13) against DEFT's default run: 100 test images, DEFT trains
    # 300 s and samples 50 s; RED-diff samples 17 s → 17/350 here and 170/800 at 1000 images.
    fewer_steps = "reddiff@row13:baselines.protocol=run_commands"
    timed = ROWS + [("deft", "sr4", "psnr", 25.0), ("deft", "sr4", "ssim", 0.81),
                    ("deft", "sr4", "time_train_s", 300.0), ("deft", "sr4", "time_sample_s", 50.0),
                    ("deft", "sr4", "time_total_s", 350.0), ("reddiff", "sr4", "psnr", 24.0),
                    ("reddiff", "sr4", "ssim", 0.79), (fewer_steps, "sr4", "psnr", 23.0),
                    (fewer_steps, "sr4", "ssim", 0.78), (fewer_steps, "sr4", "time_sample_s", 17.0),
                    (fewer_steps, "sr4", "time_total_s", 17.0)]
    caption = protocol_table(results(tmp_path, timed), "deft_protocol").caption
    assert ("relative to DEFT's default run of the task, on the test images (at the paper's count, the sampling time "
            "scaled): reddiff@row13:baselines.protocol=run_commands on sr4 0.05× (0.21× at 1000 images)") in caption
    assert "ddrm@row14" not in caption  # DDRM is not in the paper's time comparison
