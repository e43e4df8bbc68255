#!/usr/bin/env bash
# The main job: the mini reproduction, offline on CPU. For now it pre-trains the mini source DiT and samples
# a class grid from it; later issues extend it to the whole Snakemake DAG. Re-running resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
run=runs/mini/source
results=results/mini/pretrain
.venv/bin/python -m tunebench.pretrain --scale mini --out "$run"
.venv/bin/python -m tunebench.sample --model "$run/model" --out "$run/samples-grid" --seeds 0-103 --labels cycle \
  --grid "$results/source_grid.png"
mkdir -p "$results"
cp "$run/summary.json" "$results/summary.json"
cp "$run/stats.jsonl" "$results/stats.jsonl"
cp "$run/samples-grid/protocol.json" "$results/grid_protocol.json"
echo "main: model in $run/model, grid and numbers in $results/" >&2
