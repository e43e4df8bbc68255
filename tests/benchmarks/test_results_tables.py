"""The results schema (replace-on-key, strict columns), generic table rendering and the generic figures; the papers'
layouts are tested with their methods (tests/difftune/test_report.py, tests/deft/test_report.py)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from benchmarks import figures, merge_results, report
from benchmarks.results import (
    KEY_COLUMNS,
    LEGACY_COLUMNS,
    RESULT_COLUMNS,
    ResultsError,
    append_rows,
    merge,
    read_results,
    write_rows,
)
from benchmarks.tables import (
    Cell,
    Column,
    Table,
    interval_caption,
    intervals_apart,
    mark_best,
    mark_best_separated,
    split_note,
    summarise,
    to_latex,
    to_markdown,
    write_tables,
)
from tunebench.config import REHEARSAL_ENV, ConfigError

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


def test_write_rows_replaces_the_whole_file_and_checks_the_rows(tmp_path):
    csv = tmp_path / "summary.csv"
    write_rows(csv, [row(seed=1), row(seed=2)])
    write_rows(csv, [row(seed=3, ci_low=10.0, ci_high=14.0)])  # a summary keeps nothing of an earlier run
    frame = read_results(csv)
    assert list(frame["seed"]) == [3] and (frame["ci_low"].item(), frame["ci_high"].item()) == (10.0, 14.0)
    with pytest.raises(ResultsError, match="repeat the key"):
        write_rows(csv, [row(), row()])
    assert list(read_results(csv)["seed"]) == [3]  # a rejected summary leaves the file as it was


@pytest.mark.parametrize("bad, message", [
    ({k: v for k, v in row().items() if k not in ("note", "sampler")}, r"missing columns \['sampler', 'note'\]"),
    (row(gpu="h100"), r"unknown columns \['gpu'\]"),
    (row(value=None), "'note' must say why"),
    (row(value=float("nan"), note=" "), "'note' must say why"),
    (row(seed=1.5), "'seed' must be an integer"),
    (row(method=""), "'method' must not be empty"),
    (row(ci_low=1.0), "needs both 'ci_low' and 'ci_high'"),
    (row(ci_low=2.0, ci_high=1.0), "'ci_low' 2.0 is above 'ci_high' 1.0"),
])
def test_invalid_rows_are_rejected(tmp_path, bad, message):
    with pytest.raises(ResultsError, match=message):
        append_rows(tmp_path / "results.csv", [bad])
    assert not (tmp_path / "results.csv").exists()


def test_intervals_round_trip_and_a_file_from_before_them_is_read_and_upgraded(tmp_path):
    csv = tmp_path / "results.csv"
    legacy = row(seed=1)
    csv.write_text(",".join(LEGACY_COLUMNS) + "\n" + ",".join(str(legacy[c]) for c in LEGACY_COLUMNS) + "\n")
    before = read_results(csv)
    assert before["ci_low"].isna().all() and before.loc[0, "value"] == 12.5
    append_rows(csv, [row(seed=2, value=3.0, ci_low=2.5, ci_high=3.75)])
    assert csv.read_text().splitlines()[0] == ",".join(RESULT_COLUMNS)  # rewritten in the schema
    after = read_results(csv).set_index("seed")
    assert after.loc[2, ["value", "ci_low", "ci_high"]].tolist() == [3.0, 2.5, 3.75]
    assert pd.isna(after.loc[1, "ci_high"]) and after.loc[1, "value"] == 12.5


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


def test_merge_can_name_the_experiment_of_rows_measured_for_others(tmp_path):
    """deft_amortised.csv: the amortised model's rows beside DEFT's, measured as deft_main, form one experiment."""
    append_rows(tmp_path / "deft.csv", [row(experiment="deft_main", method="deft")])
    append_rows(tmp_path / "amortised.csv", [row(experiment="deft_main", method="amortised")])
    merge_results.main(["--experiment", "deft_amortised", "--out", str(tmp_path / "merged.csv"),
                        str(tmp_path / "deft.csv"), str(tmp_path / "amortised.csv")])
    merged = read_results(tmp_path / "merged.csv")
    assert set(merged["experiment"]) == {"deft_amortised"} and set(merged["method"]) == {"deft", "amortised"}
    assert set(read_results(tmp_path / "deft.csv")["experiment"]) == {"deft_main"}  # the inputs are unchanged
    append_rows(tmp_path / "other.csv", [row(experiment="other", method="deft")])
    with pytest.raises(ResultsError, match="both"):  # the new label must not hide a key measured twice
        merge_results.main(["--experiment", "deft_amortised", "--out", str(tmp_path / "twice.csv"),
                            str(tmp_path / "deft.csv"), str(tmp_path / "other.csv")])


#################################################################################
#                                    Tables                                     #
#################################################################################


def one_cell_layout(rows: pd.DataFrame, name: str, methods: list[str] | None = None) -> Table:
    """A layout of one row per method with the mean fid_local: the smallest that exercises the generic parts."""
    table = Table(name, ["Method", "FID_local↓"], rows=[], label_columns=1, caption="A_1 & 100%")
    column = Column("fid_local", "FID_local↓", -1, 2)
    for method in methods or sorted(set(rows["method"])):
        table.rows.append([Cell(method), summarise(rows[rows["method"] == method], column, table)])
    mark_best([row[1] for row in table.rows], column)
    return table


def test_generic_rendering_bolds_the_best_and_footnotes_skipped_values(tmp_path):
    rows = pd.DataFrame([row(seed=0), row(seed=1, value=13.5), row(method="lora", value=11.0),
                         row(method="bitfit", value=None, note="FID skipped: no features")])
    written = write_tables(rows, one_cell_layout, tmp_path)
    assert [path.name for path in written] == ["exp.md", "exp.tex"]
    assert (tmp_path / "exp.md").read_text() == (
        "| Method | FID_local↓ |\n| :--- | ---: |\n| bitfit | —[^1] |\n| full_ft | 13.00 ± 0.71 |\n"
        "| lora | **11.00** |\n\n[^1]: FID skipped: no features\n\n*A_1 & 100%*\n")
    latex = to_latex(one_cell_layout(rows, "exp"))
    assert r"\textbf{11.00}" in latex and r"---\textsuperscript{1}" in latex and r"13.00 $\pm$ 0.71" in latex
    assert r"\caption{A\_1 \& 100\%}" in latex and r"FID\_local$\downarrow$" in latex
    assert to_markdown(one_cell_layout(rows, "exp", ["lora", "full_ft"])).count("|\n") == 4


def test_interval_cells_state_how_once_and_bold_only_a_separated_best():
    how = "95% interval: Wilson score interval over the 100 samples"
    rows = pd.DataFrame([row(metric="rate", value=0.12, ci_low=0.07, ci_high=0.2, note=f"stand-in; {how}"),
                         row(method="lora", metric="rate", value=0.05, ci_low=0.02, ci_high=0.11, note=how)])
    assert split_note(f"stand-in; {how}") == ("stand-in", "Wilson score interval over the 100 samples")
    assert split_note("stand-in") == ("stand-in", "")
    table = Table("t", ["Method", "Rate"], rows=[], label_columns=1, caption="")
    column = Column("rate", "Rate", +1, 0, 100.0, show_std=False, show_interval=True, unit="%")
    cells = [summarise(rows[rows["method"] == method], column, table) for method in ("full_ft", "lora")]
    assert [cell.text for cell in cells] == ["12% [7, 20]", "5% [2, 11]"] and table.footnotes == ["stand-in"]
    assert interval_caption(rows) == "[low, high]: 95% intervals, Wilson score interval over the 100 samples. "
    assert summarise(rows.iloc[:1], Column("rate", "Δ", +1, 2, signed=True, show_interval=True), table).text == \
        "+0.12 [+0.07, +0.20]"
    first, second = rows.iloc[:1], rows.iloc[1:]
    assert not intervals_apart(first, second)  # [0.07, 0.20] and [0.02, 0.11] overlap
    assert intervals_apart(first, second.assign(ci_high=0.06)) and not intervals_apart(first, second.assign(
        ci_low=np.nan, ci_high=np.nan))
    mark_best_separated(cells, column, lambda i, j: intervals_apart(rows.iloc[[i]], rows.iloc[[j]]))
    assert not any(cell.bold for cell in cells)
    mark_best_separated(cells, column, lambda i, j: True)
    assert [cell.bold for cell in cells] == [True, False]
    tied = [Cell("1", 1.0), Cell("1", 1.0)]
    mark_best_separated(tied, Column("x", "x", +1, 0), lambda i, j: True)  # a tie as shown is never a win
    assert not any(cell.bold for cell in tied)


def test_write_tables_names_a_missing_experiment_and_writes_nothing(tmp_path):
    with pytest.raises(ResultsError, match=r"no rows for experiment 'nope'; the results have \['exp'\]"):
        write_tables(pd.DataFrame([row()]), one_cell_layout, tmp_path, experiment="nope")
    assert not list(tmp_path.iterdir())


def test_a_rehearsal_marks_every_row_once_and_tables_refuse_to_mix_its_rows_with_real_ones(tmp_path, monkeypatch):
    real = tmp_path / "real.csv"
    append_rows(real, [row(method="full_ft")])
    monkeypatch.setenv(REHEARSAL_ENV, str(tmp_path / "rehearsal.yaml"))
    rehearsal = tmp_path / "rehearsal.csv"
    append_rows(rehearsal, [row(method="diff_tuning", extractor="inception-0123abcd")])
    write_rows(tmp_path / "summary.csv", [row(method="lora", extractor="")])
    merge(tmp_path / "merged.csv", [rehearsal, tmp_path / "summary.csv"])  # rewritten under the rehearsal: once
    marked = read_results(tmp_path / "merged.csv").set_index("method")
    assert marked.loc["diff_tuning", "model"] == "rehearsal-runs/mini/model"
    assert marked.loc["diff_tuning", "extractor"] == "rehearsal-inception-0123abcd"
    assert marked.loc["lora", "extractor"] == "rehearsal-"
    monkeypatch.delenv(REHEARSAL_ENV)
    assert read_results(real)["model"].tolist() == ["runs/mini/model"]  # a real run writes its ids unchanged
    write_tables(read_results(rehearsal), one_cell_layout, tmp_path)  # rehearsal rows alone render
    with pytest.raises(ResultsError, match=r"1 rows come from a rehearsal .* and 1 from real runs \(e\.g\. "
                                           r"exp/full_ft/mnist5k, model 'runs/mini/model'\)"):
        write_tables(read_results(real, rehearsal), one_cell_layout, tmp_path / "mixed")


#################################################################################
#                                    Figures                                    #
#################################################################################


def assert_png(path: Path, min_side: int = 150) -> None:
    """The file is a PNG of a sensible size."""
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) >= min_side and max(image.size) <= 3000


def test_figures_are_written(tmp_path):
    curve = pd.DataFrame({"step": [0, 100, 200] * 2, "method": ["full_ft"] * 3 + ["difftune"] * 3,
                          "metric": "fid_local", "value": [50.0, 30, 25, 45, 25, 20]})
    curve.to_csv(tmp_path / "curve.csv", index=False)
    report.main(["figure", "curve", "--csv", str(tmp_path / "curve.csv"), "--out", str(tmp_path / "curve.png")])
    np.savez(tmp_path / "samples.npz", images=np.zeros((6, 16, 16, 1), np.uint8))
    report.main(["figure", "grid", "--npz", str(tmp_path / "samples.npz"), "--out", str(tmp_path / "grid.png"),
                 "--nrow", "3", "--title", "zeros"])
    for name in ("curve", "grid"):
        assert_png(tmp_path / f"{name}.png")


def test_figures_reject_bad_input(tmp_path):
    out = tmp_path / "x.png"
    with pytest.raises(ConfigError, match=r"missing \['step'\]"):
        figures.plot_metric_vs_step(pd.DataFrame({"method": ["a"], "metric": ["fid"], "value": [1]}), out)
    with pytest.raises(ConfigError, match="uint8"):
        figures.plot_sample_grid(np.zeros((2, 8, 8, 3)), out)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [["--help"], ["figure", "--help"], ["figure", "curve", "--help"],
                                  ["figure", "grid", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
