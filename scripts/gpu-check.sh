#!/usr/bin/env bash
# The GPU check: one command on one H100 or H200, offline, in at most GPU_CHECK_BUDGET_S (480) seconds.
#   bash scripts/gpu-check.sh [--model DIR] [OUT_DIR]   on a GPU machine; OUT_DIR defaults to results/bench
#   bash scripts/gpu-check.sh --cpu-tiny OUT_DIR        the same steps at smoke size on CPU (the test suite runs it)
# Steps, each through the suite's own CLIs (docs/speed.md, "The GPU check"):
#   grid       benchmarks.throughput at paper scale (DiT-XL/2, 256 px): training and DDIM-50 with guidance 1.5,
#              tf32 and bf16, batch 32 and 128, compile off; then the fp32-vs-bf16 agreement
#   inputs     benchmarks.gpu_check inputs: a random DiT-XL/2 and SD VAE (the real architectures; not with --model),
#              80 synthetic 256-px images laid out as the artbench10 dataset
#   latents    tunebench.latents caches their VAE posteriors; retention: difftune.retention --kind source
#   finetune   difftune.finetune: 50 Diff-Tuning steps of the paper recipe (batch 32, tf32) from the latent cache
#   sample     tunebench.sample: 32 images of DDIM-50 with guidance 1.5 from the fine-tuned export
#   grid_on_*  the grid with compile on, bf16 then tf32, each cut off when the budget runs out (its missing rows
#              are listed as not measured)
# Writes OUT_DIR/throughput-<gpu>.csv (the grid's rows, then one per pipeline step), .md and _agreement.csv; <gpu>
# is the card's short name (h100, h200; GPU_CHECK_NAME overrides it), cpu-tiny with --cpu-tiny. --model DIR: a
# local DiT-XL-2-256 pipeline folder (transformer/ and vae/) instead of random weights. The steps up to sample run
# in one Python process (each as `python -m` would run it) so that torch loads once. Exits 1 if a step failed.
# Temporary files (about 17 GB at paper scale: the models, the fine-tune's checkpoint) go under TMPDIR (/tmp).
set -euo pipefail

usage() { sed -n '2,3p' "$0" | sed 's/^# *//' >&2; exit 2; }
tiny=0 model="" out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu-tiny) tiny=1 ;;
    --model) [ $# -ge 2 ] || usage; model=$(realpath "$2"); shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-check: unknown option $1" >&2; usage ;;
    *) [ -z "$out" ] || usage; out=$(realpath -m "$1") ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
out=${out:-$PWD/results/bench}
if [ -x .venv/bin/python ]; then python=.venv/bin/python; elif command -v python >/dev/null; then python=python
else python=python3; fi
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
budget=${GPU_CHECK_BUDGET_S:-480}
started=$(date +%s)

if [ "$tiny" = 1 ]; then
  gpu=cpu-tiny device=cpu scale=smoke batches=2 compile=off per_class=2 retention=8 seeds=0-3
  # the smoke DiT on 8x8x4 latents of the tiny VAE (16 px images)
  sets=(--set model.in_channels=4 --set model.sample_size=8 --set sample.guided_channels=3)
  grid_extra=(--warmup 0 --iterations 1)
  # one thread: on a busy small machine a second one makes these tiny problems several times slower
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true)
  if [ -z "$name" ]; then
    echo "gpu-check: no NVIDIA GPU found (nvidia-smi); on CPU run: bash scripts/gpu-check.sh --cpu-tiny OUT_DIR" >&2
    exit 2
  fi
  short=$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]' | grep -oE '\b[a-z][0-9]{2,4}[a-z]?\b' | head -n 1 || true)
  gpu=${GPU_CHECK_NAME:-${short:-$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]' | tr -cs 'a-z0-9' '-')}}
  device=cuda scale=paper batches=32,128 compile=off,on per_class=8 retention=32 seeds=0-31
  sets=()
  grid_extra=()
fi
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -n "$model" ]; then
  weights=(--model "$model" --vae "$model") model_flag=(--model "$model") dit=$model vae=$model
else
  weights=() model_flag=() dit=$work/dit vae=$work/vae
fi
images=$work/images/artbench10
echo "gpu-check: ${gpu} (${device}), ${scale} scale, budget ${budget} s, work folder ${work}" >&2

# Each step: ::: NAME NEEDS MODULE ARGS... (NEEDS: the steps it uses the outputs of, or -)
workloads=train,sample_ddim50_cfg
grid_flags=(--scale "$scale" --device "$device" --workloads "$workloads" --batch-sizes "$batches" "${weights[@]}"
            "${grid_extra[@]}")
common=(--scale "$scale" "${sets[@]}" --set "model.vae=$vae")
failed=0
# The whole sequence is cut off (and the check fails) if it overruns the budget; 30 s are kept for the report.
timeout --kill-after=15 $((budget - 30)) "$python" - "$work/timings.tsv" \
  ::: grid - benchmarks.throughput "${grid_flags[@]}" --precisions tf32,bf16 --compile off --out "$work/grid-off.csv" \
  ::: inputs - benchmarks.gpu_check inputs --scale "$scale" "${sets[@]}" --work "$work" \
      --images-per-class "$per_class" --device "$device" "${model_flag[@]}" \
  ::: latents inputs tunebench.latents "${common[@]}" --dataset artbench10 --root "$images" --device "$device" \
      --batch-size 32 --out "$work/latents.safetensors" --no-progress \
  ::: retention inputs difftune.retention --kind source --scale "$scale" --dataset artbench10 --root "$images" \
      --n "$retention" --out "$work/retention" --no-progress \
  ::: finetune latents,retention difftune.finetune "${common[@]}" --pretrained "$dit" --dataset artbench10 \
      --method diff_tuning --retention "$work/retention" --set "data.root=$images" \
      --set "data.latents=$work/latents.safetensors" --set train.steps=50 --set train.log_every=10 \
      --set train.checkpoint_every=50 --out "$work/finetune" --no-progress \
  ::: sample finetune tunebench.sample --model "$work/finetune/model" --out "$work/samples" --seeds "$seeds" \
      --device "$device" --set sample.sampler=ddim --set sample.steps=50 --set sample.guidance_scale=1.5 \
      --set sample.eta=0 --no-progress <<'PY' || { rc=$?; echo "gpu-check: the steps stopped early (exit $rc; 124: the budget ran out)" >&2; failed=1; }
"""Run each ::: step's CLI module in this process as `python -m` would, after the steps it needs; append
'name<TAB>status<TAB>wall seconds' to the timings file."""
import gc
import runpy
import sys
import time
import traceback

timings, words = sys.argv[1], sys.argv[2:]
steps = []
for word in words:
    if word == ":::":
        steps.append([])
    else:
        steps[-1].append(word)
failed = set()
for name, needs, module, *args in steps:
    blocked = [need for need in needs.split(",") if need in failed]
    started = time.perf_counter()
    if blocked:
        status = f"not run: {', '.join(blocked)} failed"
    else:
        print(f"gpu-check: step {name}: python -m {module} {' '.join(args)}", file=sys.stderr, flush=True)
        sys.argv = [module, *args]
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            status = "ok"
        except SystemExit as stop:
            status = "ok" if stop.code in (0, None) else " ".join(f"failed (exit {stop.code})".split())
        except Exception as error:  # a bug: keep its traceback in the log, go on with the steps that do not need it
            traceback.print_exc()
            status = f"failed ({type(error).__name__})"
    if status != "ok":
        failed.add(name)
    with open(timings, "a") as handle:
        handle.write(f"{name}\t{status}\t{time.perf_counter() - started:.1f}\n")
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
PY

# Compile on, bf16 first (the goals' format), each under what is left of the budget (30 s kept for the report)
if [ "$tiny" = 0 ]; then
  for precision in bf16 tf32; do
    left=$((started + budget - 30 - $(date +%s)))
    if [ "$left" -lt 60 ]; then
      printf 'grid_on_%s\tskipped: %s s of the budget left\t0.0\n' "$precision" "$left" >> "$work/timings.tsv"
      continue
    fi
    t0=$(date +%s.%N)
    echo "gpu-check: step grid_on_${precision} (at most ${left} s)" >&2
    if timeout --kill-after=15 "$left" "$python" -m benchmarks.throughput "${grid_flags[@]}" --precisions "$precision" \
        --compile on --no-agreement --out "$work/grid-on-$precision.csv"; then
      status=ok
    else
      rc=$?
      status="failed (exit $rc)"
      if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then status="cut off at the budget (${left} s)"; fi
    fi
    printf 'grid_on_%s\t%s\t%s\n' "$precision" "$status" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" \
      >> "$work/timings.tsv"
  done
fi

csv=$out/throughput-$gpu.csv
command_line="bash scripts/gpu-check.sh"
if [ "$tiny" = 1 ]; then command_line+=" --cpu-tiny"; fi
if [ -n "$model" ]; then command_line+=" --model $model"; fi
"$python" -m benchmarks.gpu_check report --work "$work" --out "$csv" --started "$started" --budget-s "$budget" \
  --command-line "$command_line" --workloads "$workloads" --batch-sizes "$batches" --precisions tf32,bf16 \
  --compile "$compile"
if [ "$failed" = 1 ] || awk -F '\t' '$2 ~ /^(failed|not run)/ {bad = 1} END {exit !bad}' "$work/timings.tsv"; then
  echo "gpu-check: some steps failed (see ${csv%.csv}.md and the log above)" >&2
  exit 1
fi
echo "gpu-check: done in $(($(date +%s) - started)) s: ${csv%.csv}.{csv,md} and ${csv%.csv}_agreement.csv" >&2
