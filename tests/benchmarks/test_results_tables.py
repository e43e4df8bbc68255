"""The results schema (replace-on-key, strict columns), the papers' table layouts as snapshots, and the figures."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks import figures, tables
from benchmarks.results import KEY_COLUMNS, RESULT_COLUMNS, ResultsError, append_rows, read_results
from tunebench.cli import run_cli
from tunebench.config import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data"


def row(**fields) -> dict:
    """A complete results row with plausible protocol values; `fields` override."""
    base = dict(experiment="exp", method="full_ft", dataset="mnist5k", metric="fid_local", value=12.5, seed=0,
                scale="mini", model="runs/mini/model", steps=50, sampler="ddpm", guidance=1.5, n_samples=1000,
                extractor="fmnist-cnn", reference="train", git_commit="abc", config_hash="1234", note="")
    return {**base, **fields}


#################################################################################
#                                Results Schema                                 #
#################################################################################


def test_append_replaces_rows_with_the_same_key_and_keeps_key_order(tmp_path):
    csv = tmp_path / "results.csv"
    append_rows(csv, [row(seed=10), row(seed=2, method="difftune", steps=None), row(seed=2)])
    append_rows(csv, [row(seed=2, value=11.0)])  # a resumed job re-reports seed 2
    frame = read_results(csv)
    assert list(frame.columns) == list(RESULT_COLUMNS) and len(frame) == 3
    assert list(zip(frame["method"], frame["seed"])) == [("difftune", 2), ("full_ft", 2), ("full_ft", 10)]
    assert frame.loc[(frame["method"] == "full_ft") & (frame["seed"] == 2), "value"].item() == 11.0
    assert frame["seed"].dtype == "int64" and frame["steps"].dtype == "Int64" and frame["value"].dtype == "float64"
    text = csv.read_text()
    append_rows(csv, frame.to_dict("records"))
    assert csv.read_text() == text  # rows read back and written again are unchanged


@pytest.mark.parametrize("bad, message", [
    ({k: v for k, v in row().items() if k not in ("note", "sampler")}, r"missing columns \['sampler', 'note'\]"),
    (row(gpu="h100"), r"unknown columns \['gpu'\]"),
    (row(value=None), "'note' must say why"),
    (row(value=float("nan"), note=" "), "'note' must say why"),
    (row(seed=1.5), "'seed' must be an integer"),
    (row(method=""), "'method' must not be empty"),
])
def test_invalid_rows_are_rejected(tmp_path, bad, message):
    with pytest.raises(ResultsError, match=message):
        append_rows(tmp_path / "results.csv", [bad])
    assert not (tmp_path / "results.csv").exists()


def test_skipped_metric_row_round_trips(tmp_path):
    csv = tmp_path / "results.csv"
    append_rows(csv, [row(metric="lpips", value=None, steps=None, note="LPIPS skipped: no weights")])
    frame = read_results(csv)
    assert np.isnan(frame["value"].item()) and frame["steps"].isna().item() and frame["note"].item().startswith("LPIPS")


def test_a_file_with_another_header_is_an_error_and_untouched(tmp_path):
    csv = tmp_path / "old.csv"
    csv.write_text("experiment,method,dataset,metric,value,seed,gpu\nexp,a,b,fid,1.0,0,h100\n")
    before = csv.read_text()
    with pytest.raises(ResultsError, match=r"old\.csv.*missing columns \[.*'scale'.*unknown columns \['gpu'\]"):
        append_rows(csv, [row()])
    assert csv.read_text() == before
    with pytest.raises(ResultsError, match="old.csv"):
        read_results(csv)


def test_read_results_concatenates_and_rejects_a_key_in_two_files(tmp_path):
    append_rows(tmp_path / "a.csv", [row(seed=0)])
    append_rows(tmp_path / "b.csv", [row(seed=1)])
    assert list(read_results(tmp_path / "a.csv", tmp_path / "b.csv")["seed"]) == [0, 1]
    append_rows(tmp_path / "c.csv", [row(seed=1)])
    with pytest.raises(ResultsError, match="both"):
        read_results(tmp_path / "b.csv", tmp_path / "c.csv")
    with pytest.raises(ResultsError, match="repeat the key"):
        append_rows(tmp_path / "d.csv", [row(), row(value=3.0)])
    assert KEY_COLUMNS == ("experiment", "method", "dataset", "metric", "seed")


#################################################################################
#                                    Tables                                     #
#################################################################################


@pytest.mark.parametrize("layout, methods", [("difftune", "full_ft,bitfit,difftune"), ("deft", "dps,reddiff,deft")])
def test_tables_match_the_committed_snapshots(tmp_path, layout, methods):
    tables.main(["--results", str(DATA / f"{layout}_results.csv"), "--layout", layout, "--out-dir", str(tmp_path),
                 "--methods", methods])
    name = f"{layout}_main"
    assert (tmp_path / f"{name}.md").read_text() == (DATA / f"{name}.md").read_text()
    latex = (tmp_path / f"{name}.tex").read_text()
    assert latex.startswith(r"\begin{table}") and r"\caption{" in latex
    best = r"\textbf{27.33}" if layout == "difftune" else r"\textbf{0.210}"  # lowest average FID; lowest LPIPS
    assert best in latex


def test_difftune_table_marks_lowest_and_flags_protocol_disagreement():
    table = tables.difftune_table(read_results(DATA / "difftune_results.csv"), "t", methods=["full_ft", "difftune"])
    cells = {row[0].text: row for row in table.rows}
    assert cells["difftune"][1].bold and not cells["full_ft"][1].bold
    assert cells["full_ft"][-1].text == "+0.0%" and cells["difftune"][-1].text.startswith("-")
    assert "rows disagree on n_samples" not in table.caption  # bitfit's 500-sample rows are not in this table
    results = read_results(DATA / "difftune_results.csv")
    full = tables.difftune_table(results, "t")
    assert "NOTE: rows disagree on n_samples (500, 1000)" in full.caption
    without_one_cell = ~((results["method"] == "bitfit") & (results["dataset"] == "digits"))
    incomplete = tables.difftune_table(results[without_one_cell], "t")
    bitfit = next(row for row in incomplete.rows if row[0].text == "bitfit")
    assert bitfit[2].text == bitfit[4].text == "—" and incomplete.footnotes == ["no Average: a dataset has no value"]


def test_tables_cli_errors_are_one_line(tmp_path, capsys):
    args = ["--results", str(DATA / "difftune_results.csv"), "--layout", "difftune", "--out-dir", str(tmp_path)]
    for extra, message in ((["--experiment", "nope"], "no rows for experiment 'nope'"),
                           (["--baseline", "lora"], "baseline method 'lora'"),
                           (["--metric", "fid_inception"], "no rows with metric 'fid_inception'")):
        with pytest.raises(SystemExit) as exit_info:
            run_cli(tables.main, args + extra)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


#################################################################################
#                                    Figures                                    #
#################################################################################


def assert_png(path: Path, min_side: int = 150) -> None:
    """The file is a PNG of a sensible size."""
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_side and max(image.size) <= 3000


def test_figures_are_written(tmp_path):
    t0 = np.repeat([0, 250, 500, 750], 2)
    forgetting = pd.DataFrame({"t0": np.tile(t0, 2), "metric": "fid_local", "dataset": "digits",
                               "direction": ["finetuned_then_pretrained"] * 8 + ["pretrained_then_finetuned"] * 8,
                               "value": np.arange(16.0)})
    figures.plot_forgetting_curve(forgetting, tmp_path / "forgetting.png")
    curve = pd.DataFrame({"step": [0, 100, 200] * 2, "method": ["full_ft"] * 3 + ["difftune"] * 3,
                          "metric": "fid_local", "value": [50.0, 30, 25, 45, 25, 20]})
    curve.to_csv(tmp_path / "curve.csv", index=False)
    figures.main(["curve", "--csv", str(tmp_path / "curve.csv"), "--out", str(tmp_path / "curve.png")])
    figures.plot_sample_grid(np.zeros((6, 16, 16, 1), np.uint8), tmp_path / "grid.png", nrow=3, title="zeros")
    for name in ("forgetting", "curve", "grid"):
        assert_png(tmp_path / f"{name}.png")


def test_figures_reject_bad_input(tmp_path):
    out = tmp_path / "x.png"
    with pytest.raises(ConfigError, match=r"missing \['direction', 'dataset'\]"):
        figures.plot_forgetting_curve(pd.DataFrame({"t0": [0], "metric": ["fid"], "value": [1.0]}), out)
    with pytest.raises(ConfigError, match=r"missing \['step'\]"):
        figures.plot_metric_vs_step(pd.DataFrame({"method": ["a"], "metric": ["fid"], "value": [1]}), out)
    with pytest.raises(ConfigError, match="uint8"):
        figures.plot_sample_grid(np.zeros((2, 8, 8, 3)), out)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("module, argv", [(tables, ["--help"]), (figures, ["--help"]), (figures, ["grid", "--help"])])
def test_help(module, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
