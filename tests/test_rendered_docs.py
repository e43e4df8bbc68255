"""The numbers of the README and of docs/results-mini.md, workflow.md, deft.md and protein.md are the committed results:
rendering their blocks again (`python -m benchmarks.render_docs --check`) changes nothing."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RENDERED = ("README.md", "docs/results-mini.md", "docs/workflow.md", "docs/deft.md", "docs/protein.md")


def test_rendered_pages_match_the_committed_results():
    result = subprocess.run([sys.executable, "-m", "benchmarks.render_docs", "--scale", "mini", "--check", *RENDERED],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
