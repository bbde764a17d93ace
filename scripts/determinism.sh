#!/usr/bin/env bash
# What makes a run repeat on another CPU? Re-runs the digits-lt suite under settings that pin the floating-point path
# and compares the tables (issue 22). Each setting is one environment; OUT gets one folder per setting and a summary.
# Usage: scripts/determinism.sh results/determinism   (about a minute per setting on 2 cores; the folders it writes
# there are not committed, summary.md and seconds.txt are)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?give an output folder}; mkdir -p "$OUT"; rm -f "$OUT/seconds.txt"
export PATH="$PWD/.venv/bin:$PATH"
declare -A SETTINGS=(
  [default]=""
  [avx2]="ATEN_CPU_CAPABILITY=avx2"
  [threads1]="OMP_NUM_THREADS=1"
  [pinned]="MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41"
  [pinned_avx2isa]="MKL_CBWR=COMPATIBLE ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2"
)
for name in default avx2 threads1 pinned pinned_avx2isa; do
  start=$(date +%s)
  env ${SETTINGS[$name]} ltr_nb --out "$OUT/$name" --fresh > "$OUT/$name.log" 2>&1 || true
  echo "$name $(( $(date +%s) - start ))" >> "$OUT/seconds.txt"
  # the heads alone, on the default setting's trained weights: copy its runs, drop its results, re-run
  if [ "$name" != default ]; then
    rm -rf "$OUT/heads-$name"; mkdir -p "$OUT/heads-$name"
    cp -r "$OUT/default/runs" "$OUT/default/manifest.json" "$OUT/heads-$name/"
    env ${SETTINGS[$name]} ltr_nb --out "$OUT/heads-$name" > "$OUT/heads-$name.log" 2>&1 || true
  fi
done
python scripts/compare_runs.py "$OUT"
