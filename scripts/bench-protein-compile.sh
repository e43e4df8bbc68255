#!/usr/bin/env bash
# Does torch.compile change the protein samples, and what does it save? The main job's sampling command
# (workflows/rules/protein.smk: protein_prepare, protein_problems, protein_sample) on the pinned prior, with
# sample.compile off and on, for the unconditional sampler (forward passes only) and DPS (a backward pass through the
# prior at every step), fewer samples per problem than the main job (the same seeds as its first ones). Each method's
# two arms run side by side, one thread each, as the main job runs its jobs on 2 cores. docs/protein.md, "Sampling
# speed", reads the result.
#   bash scripts/bench-protein-compile.sh
# Work goes to runs/bench/protein-compile/; a sample folder that exists is kept, so a killed run resumes. The tables
# go to results/bench/protein-compile-{unconditional,dps}.{csv,md}. About 10 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
py=.venv/bin/python
work=runs/bench/protein-compile
prior=assets/mini/protein_prior
mkdir -p "$work" results/bench
[ -f "$work/data/chains.npz" ] || $py -m deft.protein.prepare --scale mini --out "$work/data"
[ -f "$work/problems/config.json" ] || $py -m deft.protein.problems --scale mini --data "$work/data" \
  --out "$work/problems"

sample() {  # sample METHOD COMPILE SETTINGS...: one arm, unless its samples exist
  local method=$1 compile=$2 dir=$work/$1-compile-$2
  shift 2
  [ -f "$dir/samples.npz" ] || $py -m deft.protein.sample "$method" --scale mini --problems "$work/problems" \
    --prior "$prior" --out "$dir" --no-progress --set sample.compile="$compile" "$@" > "$dir.log" 2>&1
}

for method in unconditional dps; do
  settings=(--set problems.samples=30)
  [ "$method" = dps ] && settings=(--set problems.samples=10 --set dps.sweep_samples=2)
  echo "== $method: eager and compiled, side by side" >&2
  sample "$method" false "${settings[@]}" & eager=$!
  sample "$method" true "${settings[@]}" & compiled=$!
  wait "$eager"
  wait "$compiled"
  $py -m deft.protein.sample_agreement --arm "eager=$work/$method-compile-false" \
    --arm "compiled=$work/$method-compile-true" --out "results/bench/protein-compile-$method.csv" \
    --table "results/bench/protein-compile-$method.md"
done
echo "bench-protein-compile: wrote results/bench/protein-compile-{unconditional,dps}.{csv,md}" >&2
