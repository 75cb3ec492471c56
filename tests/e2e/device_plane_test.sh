#!/usr/bin/env bash
# The device-plane contract (distributed/Planes.h) end to end: train, cv and predict under
# mpirun -np 2 with train.backend=strict, whose device plane refuses every tensor that was not
# declared as device data - as NCCL refuses host memory. A host count, metric or signature sent
# to the device plane fails here on a CPU machine, as it would on GPUs.
# Usage: device_plane_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=4 synth.width=1536 synth.height=1024 synth.test_fraction=0.5
      synth.val_fraction=0
      train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=32 predict.topk=3
      train.backend=strict train.sync_batchnorm=true train.threads=1 data.workers=1
      data.max_patches_per_slide=48 cv.folds=2)
fail() { echo "FAIL: $*" >&2; exit 1; }
run2() { mpirun -np 2 --oversubscribe --bind-to none "$BIN" "$@"; }

"$BIN" synth "${ARGS[@]}" > "$W/synth.log"
run2 train "${ARGS[@]}" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train (backend strict)"; }
grep -q "epoch 1/1" "$W/train.log" || { cat "$W/train.log"; fail "no epoch line"; }
run2 cv "${ARGS[@]}" "run_dir=$W/cv" > "$W/cv.log" 2>&1 || { cat "$W/cv.log"; fail "cv (backend strict)"; }
grep -q "fold 2: patch accuracy" "$W/cv.log" || { cat "$W/cv.log"; fail "no fold 2 line"; }
run2 predict "${ARGS[@]}" > "$W/predict.log" 2>&1 || { cat "$W/predict.log"; fail "predict (backend strict)"; }
grep -q "held-out slide-level accuracy" "$W/predict.log" || { cat "$W/predict.log"; fail "no accuracy line"; }
if grep -q "StrictComm" "$W"/*.log; then fail "a StrictComm complaint was printed"; fi
echo "device plane OK: train, cv and predict sent only declared device data"
