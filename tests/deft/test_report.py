"""DEFT's report CLI: Table 1 against its committed snapshot, and --help."""

from pathlib import Path

import pytest

from deft import report

DATA = Path(__file__).resolve().parents[1] / "data"


def test_table_matches_the_committed_snapshot(tmp_path):
    report.main(["table", "--results", str(DATA / "deft_results.csv"), "--layout", "deft", "--out-dir", str(tmp_path),
                 "--methods", "dps,reddiff,deft"])
    assert (tmp_path / "deft_main.md").read_text() == (DATA / "deft_main.md").read_text()
    latex = (tmp_path / "deft_main.tex").read_text()
    assert latex.startswith(r"\begin{table}") and r"\caption{" in latex
    assert r"\textbf{0.210}" in latex  # the lowest LPIPS


@pytest.mark.parametrize("argv", [["--help"], ["table", "--help"]])
def test_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report.main(argv)
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
