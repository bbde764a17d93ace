#!/usr/bin/env bash
# The GPU checklist in one prepared script, for a bare machine (no fastai / nbdev / data, no network): about 8 minutes.
#
#   scripts/gpu_check.sh OUT [WHEELS] [DATA]
#     OUT     folder for the logs, the summary and results/benchmark/*-cuda.* (made if missing)
#     WHEELS  folder of wheels from `python scripts/gpu_wheels.py --dest .whl` (default .whl); '' to use what is installed
#     DATA    data root holding the packed cifar10-jpeg.zip (default .carry/data), packed by
#             `python scripts/pack_lt_subset.py --out .carry/data --n_max 4950 --val_per_class 50`
#
# Steps, each under its own time limit, each logged to OUT/logs/<step>.log, the script going on after a failed one:
# install the wheels into a target folder; print versions; run the `#| cuda` cells of nbs/tutorials/07_on_a_gpu.ipynb; the main job
# (digits-lt) on the GPU for 2 epochs, then with --bf16 --channels_last, with --compile, and its --dry_run; a cifar10-jpeg-LT
# row of the ResNet-32 suite for 2 epochs; a kill-and-resume; the throughput benchmark; a short WB recipe (ResNet-34
# variant, 4 + 1 epochs). OUT/gpu-check.md is the summary (step, status, seconds); the exit status is 0 when no step failed.
# Without a GPU the GPU-only steps skip with a message and the `#| cuda` cells run on the CPU (LTR_NB_GPU_CHECK_DEVICE=cpu);
# LTR_NB_REHEARSE=1 runs every step on the CPU instead (benchmarks in --smoke form): the rehearsal in a bare virtualenv
# that the README's GPU section describes. LTR_NB_STEPS=kill_resume,throughput runs only those steps (after a failed one).
# OUT/gpu-check.tar.gz holds the summary, logs, benchmark files and tables, for a device call that brings back files.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: scripts/gpu_check.sh OUT [WHEELS] [DATA]}; WHEELS=${2-.whl}; DATA=${3:-.carry/data}
mkdir -p "$OUT/logs" "$OUT/benchmark"; OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg PIP_NO_INDEX=1
SUMMARY="$OUT/gpu-check.md"; T0=$(date +%s)
echo "| step | status | seconds |" > "$SUMMARY"; echo "|---|---|---|" >> "$SUMMARY"

step() {   # step NAME LIMIT_S COMMAND...: run under a time limit, log, record (only the steps in $LTR_NB_STEPS, when set)
  local name=$1 limit=$2; shift 2; local t=$(date +%s) rc
  if [ -n "${LTR_NB_STEPS:-}" ] && [[ ",install,versions,$LTR_NB_STEPS," != *",$name,"* ]]; then skip "$name" 'not in LTR_NB_STEPS'; return; fi
  echo "== $name (limit ${limit} s)"
  timeout --kill-after=10 "$limit" bash -c "$*" > "$OUT/logs/$name.log" 2>&1; rc=$?
  local s=$(( $(date +%s) - t )) status=ok
  [ $rc -eq 124 ] || [ $rc -eq 137 ] && status="timed out"
  [ $rc -ne 0 ] && [ "$status" = ok ] && status="failed (exit $rc)"
  tail -n 4 "$OUT/logs/$name.log" | sed 's/^/   /'
  echo "   -> $status in $s s"; echo "| $name | $status | $s |" >> "$SUMMARY"
}
skip() { echo "== $1: skipped ($2)"; echo "| $1 | skipped: $2 | 0 |" >> "$SUMMARY"; }

# 1. install: the carried wheels into a target folder, nothing from the network, nothing the image has replaced
SITE=${LTR_NB_SITE:-/tmp/ltr_nb-site}
if [ -n "$WHEELS" ]; then
  step install 120 "$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target '$SITE' '$WHEELS'/*.whl"
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
else skip install 'no wheel folder given: using what is installed'; fi
export LTR_NB_DATA=$(cd "$DATA" 2>/dev/null && pwd || echo "$DATA")
LTR="$PY -m ltr_nb.cli"

# 2. versions and the device
step versions 60 "$PY - <<'PYEOF'
import ltr_nb, platform, torch, torchvision, fastai, fastcore, numpy, ltr_nb
print('python', platform.python_version(), '| torch', torch.__version__, '| torchvision', torchvision.__version__, '| fastai', fastai.__version__,
      '| fastcore', fastcore.__version__, '| numpy', numpy.__version__, '| ltr_nb', ltr_nb.__version__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '-', '| data root', '$LTR_NB_DATA')
PYEOF"
GPU=$($PY -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
if [ "$GPU" = 1 ]; then DEV=cuda RUN=1 C10="--bf16" TP="--random_data" WB="--epochs 4 --stage2_epochs 1 --n_max 4950 --val_per_class 50 --channels_last --bf16 --every 1"
elif [ "${LTR_NB_REHEARSE:-0}" = 1 ]; then DEV=cpu RUN=1 C10="" TP="--random_data --smoke" WB="--smoke"
  echo "rehearsal on the CPU (LTR_NB_REHEARSE=1): every step runs with --device cpu, the benchmarks in their --smoke form; no number of it is a GPU number"
else DEV=cpu RUN=0; echo "no GPU here: the GPU-only steps skip (LTR_NB_REHEARSE=1 runs them on the CPU); the #| cuda cells run on the CPU as a rehearsal"; fi

# 3. the #| cuda cells (on the CPU: a rehearsal of their code)
step cuda_cells 240 "LTR_NB_GPU_CHECK_DEVICE=$DEV nbdev_test --flags cuda --n_workers 1 --path nbs/tutorials/07_on_a_gpu.ipynb"

# 4. the main job on the GPU: plain, bf16 + channels_last, compiled, and the dry run's estimate; a row of the ResNet-32 suite
J="digits-lt --only joint-ib,crt,wb --seeds 0 --epochs 2 --set head_epochs=1 --device $DEV"
K="digits-lt --only joint-ib --seeds 0 --epochs 200 --device $DEV --out $OUT/runs/kill"
if [ "$RUN" = 1 ]; then
  step main 120 "$LTR $J --out '$OUT/runs/main'"
  step main_bf16_cl 120 "$LTR $J --bf16 --channels_last --out '$OUT/runs/main-bf16'"
  step main_compile 180 "$LTR $J --compile --out '$OUT/runs/main-compile'"
  step main_dry_run 60 "$LTR $J --dry_run --out '$OUT/runs/main-dry'"
  step cifar_r32_row 180 "$LTR cifar10-jpeg-lt-r32 --only ce --epochs 2 --device $DEV $C10 --out '$OUT/runs/c10'"
# 5. kill and resume: SIGKILL once the first checkpoint is written; the same command resumes and finishes
  step kill_resume 150 "$LTR $K & p=\$!; for i in \$(seq 600); do sleep 0.2; ls $OUT/runs/kill/runs/*/models/ckpt.pth >/dev/null 2>&1 && break; done
    kill -9 \$p; wait \$p; echo killed; $LTR $K > $OUT/logs/kill_resume.2.log 2>&1; rc=\$?; cat $OUT/logs/kill_resume.2.log
    grep -q 'resuming run' $OUT/logs/kill_resume.2.log && [ \$rc = 0 ]"
# 6. throughput (targets a/b >= 5, a/c >= 0.8) and a short WB recipe, into OUT/benchmark
  step throughput 240 "$PY benchmarks/throughput.py --device $DEV $TP --out '$OUT/benchmark'"
  step wb_recipe 150 "$PY benchmarks/wb_recipe.py --device $DEV $WB --out '$OUT/benchmark'"
else for s in main main_bf16_cl main_compile main_dry_run cifar_r32_row kill_resume throughput wb_recipe; do skip $s 'no GPU'; done; fi

echo "total $(( $(date +%s) - T0 )) s" | tee -a "$SUMMARY"
cat "$SUMMARY"
# one archive of the logs, the benchmark files and the runs' tables (a device call brings back a few files, not folders)
(cd "$OUT" && tar czf gpu-check.tar.gz gpu-check.md logs benchmark $(ls runs/*/table.md runs/*/results.json 2>/dev/null))
! grep -q 'failed\|timed out' "$SUMMARY"
