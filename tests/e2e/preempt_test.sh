#!/usr/bin/env bash
# Preemption (issue 13, item 3): under mpirun -np 2, SIGUSR1 sent to rank 1 alone mid-epoch makes
# both ranks stop at the same step, rank 0 write checkpoints/last.pt and the job exit with status
# 75; `train` again (train.resume: auto) finishes, and the final weights are bit-identical to an
# uninterrupted run's. Then the same with SIGTERM sent to rank 0. Rank 1 is stopped (SIGSTOP)
# while the signal is queued, so the signal lands mid-epoch however fast the steps are.
# Usage: preempt_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY="${SLIDETRAIN_TORCH_PYTHON:-/usr/bin/python3}"
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      synth.num_slides=4 synth.width=2048 synth.height=1536 train.epochs=3 train.batch_size=16
      synth.val_fraction=0 synth.test_fraction=0.5
      train.progress=lines train.log_every=1 train.threads=1 data.workers=1)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$BIN" tile "${ARGS[@]}" > /dev/null
MPI=(mpirun -np 2 --oversubscribe --bind-to none "$BIN" train "${ARGS[@]}")

"${MPI[@]}" "run_dir=$W/ref" > "$W/ref.log" 2>&1 || { cat "$W/ref.log"; fail "uninterrupted run"; }

rank_pid() {  # pid of the slidetrain process of rank $1 (its environment says so)
  local p
  for p in $(pgrep -f "$BIN train" || true); do
    if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1"; then
      echo "$p"; return 0
    fi
  done
  return 1
}

preempt() {  # preempt <name> <signal> <rank>
  local name="$1" sig="$2" rank="$3" run="$W/$1" log="$W/$1.log" pid="" i
  "${MPI[@]}" "run_dir=$run" > "$log" 2>&1 &
  local job=$!
  # Wait for the 3rd step of epoch 2 (mid-epoch, after an end-of-epoch checkpoint).
  for i in $(seq 1 1200); do
    grep -q "^epoch 2/3 .* 3/" "$log" 2>/dev/null && break
    kill -0 "$job" 2>/dev/null || break
    sleep 0.05
  done
  pid="$(rank_pid "$rank")" || { cat "$log"; fail "$name: no rank $rank running (did the run end early?)"; }
  kill -STOP "$pid"; kill "-$sig" "$pid"; kill -CONT "$pid"
  local rc=0
  wait "$job" || rc=$?
  [[ $rc -eq 75 ]] || { cat "$log"; fail "$name: exit status $rc, expected 75"; }
  grep -q "preempted: SIG$sig on rank $rank; every rank stopped after step" "$log" ||
    { cat "$log"; fail "$name: no preemption message naming SIG$sig and rank $rank"; }
  grep -Eq "preempted: .*\(epoch 2, batch [0-9]+ of" "$log" || { cat "$log"; fail "$name: not mid-epoch 2"; }
  [[ -f "$run/checkpoints/last.pt" ]] || fail "$name: no checkpoint"
  "${MPI[@]}" "run_dir=$run" > "$log.resume" 2>&1 || { cat "$log.resume"; fail "$name: resume"; }
  grep -q "resumed from" "$log.resume" || { cat "$log.resume"; fail "$name: did not resume"; }
  "$PY" - "$W/ref/weights.pt" "$run/weights.pt" <<'PY' || fail "$name: weights differ"
import sys, torch
a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
assert list(a) == list(b)
bad = [k for k in a if not torch.equal(a[k], b[k])]
if bad:
    sys.exit("FAIL: not bit-identical after preemption and resume: %s" % bad[:5])
PY
  echo "$name: $(grep -o 'preempted: [^;]*; every rank stopped after step [0-9]*' "$log"), resumed; weights bit-identical"
}

preempt usr1 USR1 1
preempt term TERM 0
