"""Diff-Tuning's report CLIs: Table 1 against its committed snapshot, the best-marking and protocol caption, one-line
CLI errors, the forgetting figure, and --help of difftune.report and difftune.controlnet.report (the PEFT table and
the ablation figure: test_difftune_studies.py; the ControlNet table: test_controlnet.py)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks.results import read_results
from difftune import report
from difftune.controlnet import report as controlnet_report
from tunebench.cli import run_cli
from tunebench.config import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data"


def test_table_matches_the_committed_snapshot(tmp_path):
    report.main(["table", "--results", str(DATA / "difftune_results.csv"), "--layout", "difftune", "--out-dir",
                 str(tmp_path), "--methods", "full_ft,bitfit,difftune"])
    assert (tmp_path / "difftune_main.md").read_text() == (DATA / "difftune_main.md").read_text()
    latex = (tmp_path / "difftune_main.tex").read_text()
    assert latex.startswith(r"\begin{table}") and r"\caption{" in latex
    assert r"\textbf{15.50 $\pm$ 0.71}" in latex  # mnist5k: the lowest, its interval apart from the others


def test_difftune_table_marks_lowest_only_where_intervals_part_and_flags_protocol_disagreement():
    table = report.difftune_table(read_results(DATA / "difftune_results.csv"), "t", methods=["full_ft", "difftune"])
    cells = {row[0].text: row for row in table.rows}
    assert cells["difftune"][1].bold and not cells["full_ft"][1].bold  # mnist5k: [13.5, 17.5] vs [18.5, 23.5]
    assert not cells["difftune"][3].bold and not cells["full_ft"][3].bold  # textures: the intervals overlap
    assert not any(row[-2].bold or row[-1].bold for row in table.rows)  # no interval for the Average here
    assert "[low, high]: 95% intervals, FID ± 1.5" in table.caption
    assert cells["full_ft"][-1].text == "+0.0%" and cells["difftune"][-1].text.startswith("-")
    assert "rows disagree on n_samples" not in table.caption  # bitfit's 500-sample rows are not in this table
    results = read_results(DATA / "difftune_results.csv")
    full = report.difftune_table(results, "t")
    assert "NOTE: rows disagree on n_samples (500, 1000)" in full.caption
    without_one_cell = ~((results["method"] == "bitfit") & (results["dataset"] == "digits"))
    incomplete = report.difftune_table(results[without_one_cell], "t")
    bitfit = next(row for row in incomplete.rows if row[0].text == "bitfit")
    assert bitfit[2].text == bitfit[4].text == "—" and incomplete.footnotes == ["no Average: a dataset has no value"]


def test_table_cli_errors_are_one_line(tmp_path, capsys):
    args = ["table", "--results", str(DATA / "difftune_results.csv"), "--layout", "difftune", "--out-dir",
            str(tmp_path)]
    for extra, message in ((["--experiment", "nope"], "no rows for experiment 'nope'"),
                           (["--baseline", "lora"], "baseline method 'lora'"),
                           (["--metric", "fid_inception"], "no rows with metric 'fid_inception'")):
        with pytest.raises(SystemExit) as exit_info:
            run_cli(report.main, args + extra)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_forgetting_figure_has_a_panel_per_metric_and_checks_its_columns(tmp_path):
    t0 = np.repeat([0, 250, 500, 750], 2)
    fid = pd.DataFrame({"t0": np.tile(t0, 2), "metric": "fid_local", "dataset": "digits",
                        "direction": ["finetuned_then_pretrained"] * 8 + ["pretrained_then_finetuned"] * 8,
                        "value": np.arange(16.0)})
    pd.concat([fid, fid.assign(metric="kid_local", value=-fid["value"])]).to_csv(tmp_path / "forgetting.csv",
                                                                                  index=False)
    sizes = {}
    for name, metric in (("both", []), ("fid", ["--metric", "fid_local"])):
        report.main(["figure", "forgetting", "--csv", str(tmp_path / "forgetting.csv"), *metric, "--out",
                     str(tmp_path / f"{name}.png")])
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.format == "PNG" and min(image.size) >= 150 and max(image.size) <= 3000
            sizes[name] = image.size
    assert sizes["both"][0] > 1.6 * sizes["fid"][0]  # fid_local and kid_local side by side
    with pytest.raises(ConfigError, match=r"missing \['direction', 'dataset'\]"):
        report.plot_forgetting_curve(pd.DataFrame({"t0": [0], "metric": ["fid"], "value": [1.0]}),
                                     tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("module, argv", [
    (report, ["--help"]), (report, ["table", "--help"]), (report, ["figure", "--help"]),
    (report, ["figure", "forgetting", "--help"]), (report, ["figure", "ablation", "--help"]),
    (controlnet_report, ["--help"]), (controlnet_report, ["table", "--help"]),
    (controlnet_report, ["figure", "controlnet", "--help"])])
def test_help(module, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
