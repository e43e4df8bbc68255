#!/usr/bin/env bash
# Does the retention set's sampler matter at mini? Diff-Tuning on the study dataset (the rule of
# difftune.study_dataset picks mnist5k) with two retention sets of the same difftune.retention_n seeds: DiT's
# 250-step DDPM (learned variance) and DDIM-50 (eta = 0, the mini default of settings.retention). Each arm runs the
# main job's own commands (workflows/rules/difftune.smk: retention_set, finetune, sample_finetuned, fid_finetuned)
# with only the retention sampler changed, so the DDIM-50 arm repeats the main job's diff_tuning run on that dataset.
# docs/workflow.md, "Levers measured for the mini budget", reads the result.
#   bash scripts/bench-retention-sampler.sh [ARM...]     ARM: ddpm250, ddim50 (default: both)
# Work goes to runs/bench/retention-sampler/ARM/; a step whose output exists is skipped, so a killed run resumes
# (each CLI writes its output whole or resumes itself). The rows go to results/bench/retention-sampler-mini.csv,
# written whole at the end. The dataset, set size, sample count, sampling steps and guidance are read from
# workflows/config/mini.yaml, as the DAG reads them. Needs the pinned assets; the study dataset's FID reference is
# made here if missing. About 45 min on 2 cores, most of it the DDPM set (5x the DDIM set's network evaluations).
set -euo pipefail
cd "$(dirname "$0")/.."
arms=("$@")
[ ${#arms[@]} -gt 0 ] || arms=(ddpm250 ddim50)
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
py=.venv/bin/python
work=runs/bench/retention-sampler
ref=$work/fid-ref
out=results/bench/retention-sampler-mini.csv
mkdir -p "$work"
# The main job's settings of the comparison (workflows/config/mini.yaml, key difftune); an assignment, so that a
# config error stops the script (set -e does not see a failing process substitution).
settings=$($py - <<'PY'
from difftune.study_dataset import study_dataset
from tunebench.config import load_yaml, settings_file

settings = load_yaml(settings_file("mini"))["difftune"]
print(study_dataset(settings["study_dataset"], settings["datasets"]), settings["retention_n"],
      settings["fid_samples"], settings["sample_steps"], settings["guidance"])
PY
)
read -r dataset retention_n fid_samples sample_steps guidance <<< "$settings"

sampler_overrides() {  # sampler_overrides ARM: the retention set's sampler settings
  case "$1" in
    ddpm250) echo "--set sample.sampler=ddpm --set sample.steps=250" ;;
    ddim50) echo "--set sample.sampler=ddim --set sample.steps=50" ;;
    *) echo "bench-retention-sampler: unknown arm '$1' (use ddpm250 or ddim50)" >&2; return 1 ;;
  esac
}

for arm in "${arms[@]}"; do sampler_overrides "$arm" >/dev/null; done  # a bad arm fails before any work
if [ ! -d "$ref" ]; then
  $py -m benchmarks.fid ref --dataset "$dataset" --split train --extractor local --features assets/mini/feature_net \
    --resolution 32 --out-dir "$ref.partial"
  mv "$ref.partial" "$ref"
fi
rows=$work/rows.partial.csv
rm -f "$rows"
for arm in "${arms[@]}"; do
  dir=$work/$arm
  echo "== $arm: retention set" >&2
  # shellcheck disable=SC2046  # the overrides are words
  [ -f "$dir/retention/manifest.json" ] || $py -m difftune.retention --scale mini --model assets/mini/source_dit \
    --out "$dir/retention" --n "$retention_n" $(sampler_overrides "$arm")
  echo "== $arm: fine-tune" >&2
  [ -f "$dir/finetune/summary.json" ] || $py -m difftune.finetune --scale mini --pretrained assets/mini/source_dit \
    --retention "$dir/retention" --dataset "$dataset" --method diff_tuning --out "$dir/finetune"
  echo "== $arm: samples" >&2
  [ -f "$dir/samples/protocol.json" ] && [ -f "$dir/samples/samples.npz" ] || $py -m tunebench.sample \
    --model "$dir/finetune/model" --out "$dir/samples" --seeds "0-$((fid_samples - 1))" \
    --labels uniform --set sample.steps="$sample_steps" --set sample.guidance_scale="$guidance"
  echo "== $arm: fid_local" >&2
  $py -m benchmarks.fid calc --images "$dir/samples" --ref "$ref"/*.npz --features assets/mini/feature_net \
    --results "$rows" --experiment retention_sampler --method "diff_tuning@retention_sampler=$arm" \
    --dataset "$dataset" --scale mini --seed 0
done
mv "$rows" "$out"
echo "bench-retention-sampler: wrote $out" >&2
