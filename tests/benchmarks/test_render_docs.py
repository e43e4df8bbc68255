"""The renderer of the numbers in the README and the results pages: each block kind from made-up results, footnotes
kept apart, --check on stale and fresh files, and errors that name the block or file."""

import pandas as pd
import pytest

from benchmarks import render_docs
from benchmarks.ledger import LEDGER_COLUMNS
from benchmarks.render_docs import RenderError

PAGE = """# Results

Prose stays as written.

<!-- render: ledger all -->
stale ledger
<!-- /render -->

<!-- render: table demo -->
<!-- /render -->

<!-- render: runs -->
<!-- /render -->

<!-- render: rules -->
<!-- /render -->

<!-- render: bench speed-cpu -->
<!-- /render -->
"""


@pytest.fixture
def results(tmp_path):
    """results/mini with one claim, one table with a footnote, two runs (one of file targets) and three timed jobs."""
    folder = tmp_path / "results/mini"
    (folder / "claims").mkdir(parents=True)
    (folder / "tables").mkdir()
    claim = {column: "" for column in LEDGER_COLUMNS} | {
        "claim_id": "DT-1", "statement": "lower FID", "paper_value": -24.6, "value": 12.345, "ci_low": -1.0,
        "ci_high": 25.5, "verdict": "inconclusive"}
    pd.DataFrame([claim]).to_csv(folder / "claims/all.csv", index=False)
    (folder / "tables/demo.md").write_text("| a |\n| --- |\n| 1[^1] |\n\n[^1]: one footnote\n")
    (tmp_path / "results/bench").mkdir()
    (tmp_path / "results/bench/speed-cpu.md").write_text("| workload | images/s |\n| --- | ---: |\n| train | 194.63 |")
    pd.DataFrame([{"targets": "headline", "started_utc": "", "ended_utc": "", "wall_s": 5400.0, "jobs_run": 130,
                   "job_wall_s": 10000.0, "job_cpu_s": 9000.0, "git_commit": "0123456789abcdef", "machine": "cpu"}]
                 ).to_csv(folder / "run_times.csv", index=False)
    pd.DataFrame([{"targets": "results/mini/difftune_seeds.csv results/mini/tables/difftune_seeds.md",
                   "started_utc": "", "ended_utc": "", "wall_s": 600.0, "jobs_run": 3, "job_wall_s": 1200.0,
                   "job_cpu_s": 1200.0, "git_commit": "0123456789abcdef", "machine": "cpu"}]
                 ).to_csv(folder / "run_times.csv", index=False, mode="a", header=False)
    pd.DataFrame([{"rule": rule, "job": job, "wall_s": wall, "cpu_s": wall - 6, "max_rss_mb": 1, "mean_load": 1,
                   "ended_utc": ""} for rule, job, wall in (("finetune", "a", 120), ("finetune", "b", 180),
                                                            ("claims", "all", 6))]).to_csv(folder / "timing.csv",
                                                                                           index=False)
    return tmp_path / "results"


def test_blocks_are_rendered_and_prose_is_kept(tmp_path, results):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    render_docs.main([str(page), "--results-root", str(results)])
    text = page.read_text()
    assert "Prose stays as written." in text and "stale ledger" not in text
    assert "| DT-1 | lower FID | -24.6 | 12.3 [-1, 25.5] | **inconclusive** |" in text
    assert "| 1[^demo-1] |" in text and "[^demo-1]: one footnote" in text
    assert "| headline | 90.0 | 130 | 150.0 | `0123456789` | cpu |" in text
    assert "| `difftune_seeds.csv`, `tables/difftune_seeds.md` | 10.0 | 3 | 20.0 | `0123456789` | cpu |" in text
    assert "| finetune | 2 | 5.0 | 3.0 | 4.8 |\n| claims | 1 | 0.1 | 0.1 | 0.0 |" in text  # costliest first
    assert "| train | 194.63 |\n<!-- /render -->" in text  # the bench table, its missing final newline added
    render_docs.main([str(page), "--results-root", str(results), "--check"])  # fresh: no error


def test_check_reports_a_stale_block_without_writing(tmp_path, results, capsys):
    page = tmp_path / "page.md"
    page.write_text(PAGE)
    with pytest.raises(SystemExit, match="stale render blocks"):
        render_docs.main([str(page), "--results-root", str(results), "--check"])
    assert page.read_text() == PAGE and "-stale ledger" in capsys.readouterr().out


def test_a_block_without_committed_results_says_so(tmp_path, results):
    page = tmp_path / "page.md"
    page.write_text("<!-- render: table missing -->\nold numbers\n<!-- /render -->\n")
    render_docs.main([str(page), "--results-root", str(results)])
    text = page.read_text()
    assert "old numbers" not in text and f"Not in the repository yet: `{results}/mini/tables/missing.md`" in text


@pytest.mark.parametrize("block, message", [
    ("<!-- render: chart -->\n<!-- /render -->", "unknown block 'chart"),
    ("<!-- render: bench -->\n<!-- /render -->", "unknown block 'bench"),
    ("no blocks at all", "has no render block"),
])
def test_bad_blocks_name_the_problem(tmp_path, results, block, message):
    page = tmp_path / "page.md"
    page.write_text(block + "\n")
    with pytest.raises(RenderError, match=message):
        render_docs.main([str(page), "--results-root", str(results)])


def test_run_targets_name_result_files_and_count_intermediates():
    targets = "headline results/mini/protein_motif.csv runs/mini/protein/data runs/mini/protein/dps/samples.npz"
    assert render_docs.target_names(targets, "mini") == ("headline, `protein_motif.csv`, "
                                                         "2 intermediates under `runs/mini/`")
    assert render_docs.target_names("runs/mini/protein/data", "mini") == "1 intermediate under `runs/mini/`"


def test_runs_last_commit_keeps_only_the_runs_of_the_last_runs_commit(tmp_path, results):
    later = {"targets": "headline", "started_utc": "", "ended_utc": "", "wall_s": 6000.0, "jobs_run": 148,
             "job_wall_s": 11000.0, "job_cpu_s": 9600.0, "git_commit": "fedcba9876543210", "machine": "cpu"}
    pd.DataFrame([later]).to_csv(results / "mini/run_times.csv", index=False, mode="a", header=False)
    page = tmp_path / "page.md"
    page.write_text("<!-- render: runs last-commit -->\n<!-- /render -->\n<!-- render: runs -->\n<!-- /render -->\n")
    render_docs.main([str(page), "--results-root", str(results)])
    current, history = page.read_text().split("<!-- render: runs -->")
    assert "| headline | 100.0 | 148 | 160.0 | `fedcba9876` | cpu |" in current and "0123456789" not in current
    assert history.count("`0123456789`") == 2 and "`fedcba9876`" in history
    resumed = {**later, "wall_s": 1200.0, "jobs_run": 52, "job_cpu_s": 2400.0}
    pd.DataFrame([resumed]).to_csv(results / "mini/run_times.csv", index=False, mode="a", header=False)
    render_docs.main([str(page), "--results-root", str(results)])
    current, history = page.read_text().split("<!-- render: runs -->")
    assert "| headline, 2 starts summed | 120.0 | 200 | 200.0 | `fedcba9876` | cpu |" in current
    assert "starts summed" not in history
    ledger = {**later, "targets": "results/mini/claims/all.csv", "wall_s": 3.0, "jobs_run": 2, "job_cpu_s": 1.0}
    pd.DataFrame([ledger, resumed, ledger]).to_csv(results / "mini/run_times.csv", index=False, mode="a",
                                                   header=False)
    render_docs.main([str(page), "--results-root", str(results)])
    current = page.read_text().split("<!-- render: runs -->")[0]
    assert current.count("starts summed") == 1, "the same targets run again after another run are a new run"
    page.write_text("<!-- render: runs newest -->\n<!-- /render -->\n")
    with pytest.raises(RenderError, match="unknown block 'runs newest'"):
        render_docs.main([str(page), "--results-root", str(results)])
