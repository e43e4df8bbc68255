"""Nothing in the repository cites the private research notes: every fact cites an upstream source or `docs/`."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTE_NAMES = "difftuning|inverse|offline|paper_reference|perf|slurm|style"  # no docs/ page has these names
PRIVATE = re.compile(
    r"(?<![\w-])notes[/][\w.-]+"  # a path into a notes folder, wherever it sits
    r"|\.\./shared\b|\bshared[/]notes\b|/work/shared\b"  # [/]: this file names the pattern without matching it
    rf"|(?<![\w/.-])(?:{NOTE_NAMES})\.md\b"  # a note named without its folder: "perf.md §2.3"
    r"|(?<![\w/.-])(?:deft|protein)\.md §"  # docs/deft.md and docs/protein.md exist; the bare names with a § do not
    r"|\bnotes §"  # "see notes §6"
)


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = []
    for name in names.decode().split("\0"):
        if not name or name.startswith("results/") or name == "tests/test_citations.py":
            continue
        path = ROOT / name
        if path.is_file():
            paths.append(path)
    return paths


def test_no_reference_to_the_private_notes():
    files = tracked_text_files()
    assert len(files) > 50, "git ls-files found too few files: is this a git checkout?"
    hits = []
    for path in files:
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # not text
        for number, line in enumerate(text.splitlines(), start=1):
            if PRIVATE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, ("cite the upstream source (repository + file, or paper + section) or a docs/ section instead "
                      "of the private notes:\n" + "\n".join(hits))
