#!/usr/bin/env bash
# CPU threads follow the affinity mask SLURM or mpirun give a rank (issue 13, item 2): a rank
# bound to one core computes on 1 thread and reads with 1 worker; two unbound ranks share the
# node's cores; the choice is printed at start.
# Usage: threads_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
NODE=$(nproc --all)
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      synth.num_slides=2 synth.width=1024 synth.height=768 synth.test_fraction=0 train.max_steps=1
      synth.val_fraction=0
      train.batch_size=8 tiling.level=0 tiling.patch_size=32 train.progress=none)
"$BIN" synth "${ARGS[@]}" > /dev/null
taskset -c 0 "$BIN" train "${ARGS[@]}" "run_dir=$W/bound" > "$W/bound.log" 2>&1 || { cat "$W/bound.log"; fail "train on one core"; }
grep -q "^threads: 1 compute + 1 stream worker per rank (affinity: 1 of $NODE cores)" "$W/bound.log" ||
  { cat "$W/bound.log"; fail "one bound core: expected 1 compute + 1 worker"; }
mpirun -np 2 --oversubscribe --bind-to none "$BIN" train "${ARGS[@]}" "run_dir=$W/shared" > "$W/shared.log" 2>&1 ||
  { cat "$W/shared.log"; fail "train on 2 unbound ranks"; }
grep -q "^threads: .* per rank (affinity: $NODE of $NODE cores, shared by 2 local ranks)" "$W/shared.log" ||
  { cat "$W/shared.log"; fail "two unbound ranks should share the node"; }
echo "threads OK"
