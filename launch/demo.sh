#!/usr/bin/env bash
# The main job, end to end on a synthetic cohort it generates:
#   synth (16 slides) -> tile -> mpirun -np 2 train -> predict (held-out slide-level accuracy).
# Outputs go to demo_out/ (override with DEMO_OUT=...). Extra key=value args go to every step.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/launch/setup.sh"
cd "$ROOT"
OUT="${DEMO_OUT:-demo_out}"
NP="${DEMO_RANKS:-2}"
BIN="$ROOT/build/slidetrain"
ARGS=(-c configs/demo.yaml "synth.out_dir=$OUT/cohort" "cohort=$OUT/cohort/cohort.csv"
      "cache_dir=$OUT/cache" "run_dir=$OUT/run" "$@")
start=$(date +%s)
echo "== synth";   "$BIN" synth "${ARGS[@]}"
echo "== tile";    "$BIN" tile "${ARGS[@]}"
echo "== train ($NP ranks)"; "$ROOT/launch/mpirun.sh" "$NP" train "${ARGS[@]}"
echo "== predict"; "$BIN" predict "${ARGS[@]}"
echo "demo finished in $(( $(date +%s) - start )) s; outputs in $OUT/run"
