"""The committed results are traceable: every measured row names the clean commit that made it, and no committed
result names a path of the machine it was made on (a reader cannot open `/work/...` of someone else's machine, and
such a path says nothing about the protocol). Runs over the files git tracks under results/."""

import csv
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Transcribed from the papers (their `source` column says where), not measured: no commit made them.
TRANSCRIBED = {"results/paper_reference.csv"}
TEXT_SUFFIXES = {".csv", ".md", ".json", ".tex", ".html", ".pdb", ".txt"}
# An absolute path under a folder that only exists on some machine; a repository-relative path (runs/...,
# assets/...) is what a row should name. Preceded by no path or word character, so `runs/tmp/` does not match.
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:work|root|home|tmp|mnt|scratch|Users|check|opt|var|srv|data)/[\w.-]+")
COMMIT = re.compile(r"[0-9a-f]{7,40}")  # hand-recorded measurement tables use short hashes


def tracked_results() -> list[Path]:
    """The files git tracks under results/."""
    listed = subprocess.run(["git", "ls-files", "results"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / name for name in listed.stdout.split()]


def machine_paths(text: str) -> list[str]:
    """The machine paths that `text` names."""
    return MACHINE_PATH.findall(text)


def test_the_pattern_finds_machine_paths_and_passes_repository_paths():
    assert machine_paths("model /work/lever/ft-ddim50/model, weights /root/.cache/torch/x.pth") == [
        "/work/lever", "/root/.cache"]
    assert machine_paths("assets/mini/source_dit runs/mini/tmp/x $TORCH_HOME/hub/checkpoints/x.pth https://a.b/c") == []


def test_no_committed_result_names_a_machine_path():
    files = [path for path in tracked_results() if path.suffix in TEXT_SUFFIXES]
    assert len(files) > 20, "results/ holds fewer text files than expected; is this a checkout of the suite?"
    found = {}
    for path in files:
        paths = machine_paths(path.read_text(errors="replace"))
        if paths:
            found[str(path.relative_to(ROOT))] = sorted(set(paths))[:3]
    assert not found, f"committed results name machine paths (regenerate them with repository-relative paths): {found}"


@pytest.mark.parametrize("path", [p for p in tracked_results() if p.suffix == ".csv"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_measured_row_names_the_clean_commit_that_made_it(path):
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if "git_commit" not in (reader.fieldnames or []):
            pytest.skip("no git_commit column: not a results table")
        commits = {row["git_commit"] for row in reader}
    if str(path.relative_to(ROOT)) in TRANSCRIBED:
        assert commits == {""}, "transcribed paper numbers name no commit"
        return
    unclean = sorted(commit for commit in commits if not COMMIT.fullmatch(commit))
    assert not unclean, f"rows made from uncommitted or unknown code: {unclean}"
