#!/usr/bin/env bash
# The main job: the mini reproduction, offline on CPU, as one Snakemake DAG (pre-train the source DiT, the Diff-Tuning
# comparison on the 8 mini datasets, the chain-of-forgetting curve, tables and figures into results/mini/).
# Re-running resumes: finished rules are skipped and interrupted training continues from its last checkpoint.
# Extra arguments go to snakemake (e.g. --dry-run, or --configfile workflows/config/smoke.yaml for a quick check).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
exec .venv/bin/snakemake --profile workflows/profiles/local --configfile workflows/config/mini.yaml "$@"
