"""git_commit: a result row's provenance; outputs the DAG rewrites do not make the checkout dirty, code does."""

import subprocess

import pytest

from tunebench.io import git_commit


@pytest.fixture
def repo(tmp_path):
    """A one-commit repository with a code file and a tracked results CSV."""
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.csv").write_text("a\n1\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    for command in (["init", "-q"], ["add", "-A"],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    return tmp_path


def head(repo) -> str:
    """The repository's HEAD commit."""
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()


def test_rewritten_results_and_untracked_files_keep_the_commit_clean(repo):
    (repo / "results" / "table.csv").write_text("a\n2\n")
    (repo / "notes.txt").write_text("untracked")
    assert git_commit(repo) == head(repo)


def test_changed_code_marks_the_commit_dirty(repo):
    (repo / "code.py").write_text("x = 2\n")
    assert git_commit(repo) == head(repo) + "+dirty"


def test_outside_a_checkout_the_commit_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"
