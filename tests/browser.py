"""Headless Chromium for the tests that open the report page as a reader would: the page's own check (script
errors, images that did not load, empty sections; `benchmarks.report_page.CHECK_SCRIPT`) read from `--dump-dom`,
and a screenshot."""

import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs "
                                                             "Debian's chromium where apt is available)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu"]


def page_check(page) -> dict:
    """What the page's inline check recorded after loading in headless Chromium."""
    result = subprocess.run([CHROMIUM, *FLAGS, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="page-check"[^>]*data-done="yes"[^>]*>(.*?)</pre>', result.stdout, re.S)
    assert found, "the page's check never ran: " + result.stdout[-1000:]
    return json.loads(found.group(1))


def screenshot(page, out, width: int, height: int) -> None:
    """A PNG of the page's first `height` pixels at window width `width`."""
    subprocess.run([CHROMIUM, *FLAGS, "--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={out}",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
