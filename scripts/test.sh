#!/usr/bin/env bash
# Set up if needed, then run the whole test suite offline on CPU. Extra arguments go to pytest.
# Two pytest workers (pytest-xdist, a test file per worker at a time): the smoke DAG test goes first and keeps one
# worker for minutes while the other runs the rest. TUNEBENCH_TEST_WORKERS=0 runs everything in one process.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
workers=${TUNEBENCH_TEST_WORKERS:-2}
parallel=()
if [ "$workers" != 0 ]; then parallel=(-n "$workers" --dist loadfile); fi
exec .venv/bin/python -m pytest -q "${parallel[@]}" "$@"
