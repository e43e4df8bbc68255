#!/usr/bin/env bash
# The main job: the mini reproduction, offline on CPU, as one Snakemake DAG in two tiers (docs/workflow.md).
#   bash scripts/main.sh [ARGS...]       the headline, from the pinned pre-trained models of assets/mini/:
#                                        Diff-Tuning vs full fine-tuning on the 8 mini datasets, the
#                                        chain-of-forgetting curve, DEFT with every baseline on 5 inverse problems,
#                                        protein motif scaffolding; tables, figures, the claims ledger
#   bash scripts/main.sh all [ARGS...]   the headline and every study: PEFT on the 8 datasets, the ablations,
#                                        ControlNet convergence, DEFT's amortised upper bounds (images, protein)
# Results go to results/mini/, the time of every job to results/mini/timing.csv. Re-running resumes: finished rules
# are skipped and interrupted training continues from its last checkpoint. ARGS go to snakemake (e.g. --dry-run,
# --report report.html, or --configfile workflows/config/smoke.yaml for a quick check).
set -euo pipefail
cd "$(dirname "$0")/.."
target=headline
if [ "${1:-}" = all ]; then
  target=all
  shift
fi
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
# The target first: --configfile takes every value up to the next option, so a target after it would be read as a
# config file.
exec .venv/bin/snakemake "$target" --profile workflows/profiles/local --configfile workflows/config/mini.yaml "$@"
