#!/usr/bin/env bash
# Launch environments (issue 13, item 6; the SLURM cluster test is slurm_test.sh):
# 1. torchrun habits without an MPI launcher: WORLD_SIZE=2 RANK=0 stops at once, showing the
#    equivalent mpirun and srun command lines (before: a bare hint, no command).
# 2. torchrun variables that disagree with MPI's view (a stale RANK exported to mpirun's ranks)
#    stop the job naming both.
# 3. Two ranks over TCP only (--mca btl tcp,self: no shared memory, as ranks on two hosts) run
#    train, cv and predict.
# Usage: launchers_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$(realpath "$1")"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=4 synth.width=1536 synth.height=1024 synth.test_fraction=0.5
      synth.val_fraction=0
      train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=32 predict.topk=3
      train.threads=1 data.workers=1 data.max_patches_per_slide=48 cv.folds=2)
"$BIN" synth "${ARGS[@]}" > "$W/synth.log"

# 1. WORLD_SIZE without a launcher.
rc=0
SECONDS=0
WORLD_SIZE=2 RANK=0 LOCAL_RANK=0 timeout 60 "$BIN" train "${ARGS[@]}" > "$W/t1.log" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || { cat "$W/t1.log"; fail "WORLD_SIZE=2 without a launcher: exit $rc (expected 1; 134: uncaught exception)"; }
grep -q "mpirun -np 2 $BIN train -c $SRC/configs/demo.yaml" "$W/t1.log" &&
  grep -q "srun -n 2 --mpi=pmix $BIN train" "$W/t1.log" ||
  { cat "$W/t1.log"; fail "the message does not show the mpirun and srun commands"; }
[[ -e "$W/run" ]] && fail "it wrote a run directory before stopping"
echo "WORLD_SIZE=2 without a launcher: stopped in ${SECONDS} s with the mpirun/srun commands"

# 2. A stale torchrun RANK under mpirun.
rc=0
timeout 60 mpirun -np 2 --oversubscribe --bind-to none -x RANK=1 -x WORLD_SIZE=2 "$BIN" train "${ARGS[@]}" \
  > "$W/t2.log" 2>&1 || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || { cat "$W/t2.log"; fail "stale RANK under mpirun: exit $rc"; }
grep -q "launcher variables disagree: OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 (openmpi) but RANK=1" "$W/t2.log" ||
  { cat "$W/t2.log"; fail "the disagreement is not named"; }
echo "stale RANK under mpirun: refused, naming both"

# 3. TCP only.
# Over the loopback interface: OpenMPI 5 (trixie) finds no reachable pair among the others in a
# chroot; the transport is TCP all the same.
tcp() { mpirun -np 2 --oversubscribe --bind-to none --mca btl tcp,self --mca btl_tcp_if_include lo "$BIN" "$@"; }
tcp train "${ARGS[@]}" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train over tcp"; }
grep -q "2 ranks" "$W/train.log" || { cat "$W/train.log"; fail "train did not run on 2 ranks"; }
tcp cv "${ARGS[@]}" "run_dir=$W/cv" > "$W/cv.log" 2>&1 || { cat "$W/cv.log"; fail "cv over tcp"; }
grep -q "fold 2: patch accuracy" "$W/cv.log" || { cat "$W/cv.log"; fail "no fold 2 line"; }
tcp predict "${ARGS[@]}" > "$W/predict.log" 2>&1 || { cat "$W/predict.log"; fail "predict over tcp"; }
grep -q "held-out slide-level accuracy" "$W/predict.log" || { cat "$W/predict.log"; fail "no accuracy line"; }
echo "btl tcp,self: train, cv and predict on 2 ranks"
