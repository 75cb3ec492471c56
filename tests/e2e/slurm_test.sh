#!/usr/bin/env bash
# SLURM end to end (issue 13, item 6): starts a private one-node SLURM on this machine (munged
# with a fresh key, slurmctld and slurmd from Debian's slurm-wlm, free ports, everything under a
# temporary folder, no cgroups), then
#   1. `sbatch launch/slurm.sbatch` on the synthetic cohort, unmodified, with only command-line
#      overrides of its 2-node x 4-GPU #SBATCH lines (-N1 -n2 -c1 --gpus-per-task=0): it tiles,
#      trains on 2 ranks started by `srun --mpi=pmix` (no mpirun) and predicts;
#   2. the requeue path: the same job with 4 epochs gets SIGUSR1 on its batch shell
#      (`scancel --signal=USR1 --batch`) mid-training; the script passes it on to the step, the
#      ranks write a checkpoint and exit 75, the script runs `scontrol requeue`, and the job's
#      second run resumes training from the checkpoint and predicts (Restarts=1, COMPLETED);
#   3. `scancel`: the ranks write a checkpoint on SIGTERM and the job ends CANCELLED, not
#      requeued;
#   4. `mpirun` inside an sbatch allocation starts a correct 2-rank world;
#   5. `srun --mpi=none` fails at once and writes nothing (OpenMPI 4.1's own message, or
#      slidetrain's where the MPI starts singletons).
# SLURM or munge missing: installed with launch/setup.sh --packages slurm-wlm munge (root).
# The daemons, jobs and the folder are removed on exit, whatever happens. The slurm.conf leaves
# MpiDefault=none, so the script must ask for PMIx itself on every step that starts MPI.
# Usage: slurm_test.sh <slidetrain binary> <source dir>   (SLIDETRAIN_TEST_KEEP=1 keeps the folder)
set -euo pipefail
BIN="$1"; SRC="$2"
T0=$SECONDS
for v in "${!SLURM_@}"; do unset "$v"; done  # the test may itself run inside a SLURM job
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
W="$(mktemp -d /tmp/slidetrain-slurm.XXXXXX)"
chmod 755 "$W"  # munged wants its socket's folder searchable by everyone
PIDS=()          # munged, slurmctld, slurmd (started in the foreground, as our children)

show_logs() {
  local f
  for f in "$W"/*.out "$W"/slurmctld.log "$W"/slurmd.log "$W"/munged.log; do
    [[ -f "$f" ]] || continue
    echo "---- ${f#"$W"/} (last 60 lines)" >&2
    tail -n 60 "$f" >&2
  done
}
fail() { echo "FAIL: $*" >&2; show_logs; exit 1; }

cleanup() {
  set +e
  if [[ -f "$W/slurm.conf" ]] && ((${#PIDS[@]})); then
    local ids i
    ids="$(squeue -h -o %i 2>/dev/null)"
    if [[ -n "$ids" ]]; then
      scancel $ids 2>/dev/null
      for i in $(seq 1 100); do [[ -z "$(squeue -h -o %i 2>/dev/null)" ]] && break; sleep 0.2; done
    fi
  fi
  local p
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null
  done
  # Anything left of this cluster (slurmstepd, tasks) has our slurm.conf in its environment.
  for p in $(grep -lsF "SLURM_CONF=$W/slurm.conf" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3); do
    [[ "$p" != "$$" ]] && kill -KILL "$p" 2>/dev/null
  done
  if [[ -n "${SLIDETRAIN_TEST_KEEP:-}" ]]; then echo "slurm_test: kept $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT

# waitfor <seconds> <what> <command...>: polls the command every 0.2 s until it succeeds.
waitfor() {
  local secs="$1" what="$2" end; shift 2
  end=$((SECONDS + secs))
  until "$@"; do
    ((SECONDS < end)) || fail "timed out after ${secs}s waiting for $what"
    sleep 0.2
  done
}

# ---- the packages (launch/setup.sh's PACKAGES has slurm-wlm and munge) ----------------------
export PATH="$PATH:/usr/sbin:/sbin"  # the daemons live there; not on every user's PATH
need=(munged munge slurmctld slurmd sbatch srun squeue scontrol scancel sinfo)
missing() { local c; for c in "${need[@]}"; do command -v "$c" >/dev/null || return 0; done; return 1; }
if missing; then
  echo "slurm_test: SLURM or munge missing; installing them with launch/setup.sh --packages"
  "$SRC/launch/setup.sh" --packages slurm-wlm munge || fail "could not install slurm-wlm and munge"
  missing && fail "still missing one of: ${need[*]}"
fi

# ---- a one-node cluster ----------------------------------------------------------------------
H="$(hostname -s)"
read -r PCTLD PSLURMD < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
mkdir -p "$W/state" "$W/spool" "$W/tmp" "$W/pmix"
echo "PMIxCliTmpDirBase=$W/pmix" > "$W/mpi.conf"  # read from slurm.conf's folder
head -c 1024 /dev/urandom > "$W/munge.key"; chmod 400 "$W/munge.key"
: > "$W/plugstack.conf"  # not the system's /etc/slurm/plugstack.conf
# slurmd 23.02 and newer set up a cgroup plugin even with proctrack/linuxproc and fail where no
# cgroup filesystem is mounted (a chroot: launch/compat.sh); "disabled" is new there too (22.05
# fails on it).
SLURM_MAJOR="$(slurmd -V | grep -o '[0-9][0-9]*\.[0-9]' | head -n 1 | cut -d. -f1)"
((SLURM_MAJOR >= 23)) && echo "CgroupPlugin=disabled" > "$W/cgroup.conf"
cat > "$W/slurm.conf" <<EOF
ClusterName=slidetraintest
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$PCTLD
SlurmdPort=$PSLURMD
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays the restart of a requeued job (default 120 s); the main scheduling
# loop starts it (default every 60 s)
AuthInfo=socket=$W/munge.sock,cred_expire=5
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd.log
PlugStackConfig=$W/plugstack.conf
TmpFS=$W/tmp
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$H Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$W/slurm.conf"
munged -F --force --socket="$W/munge.sock" --key-file="$W/munge.key" --log-file="$W/munged.log" \
  --pid-file="$W/munged.pid" --seed-file="$W/munged.seed" > "$W/munged.stderr" 2>&1 & PIDS+=($!)
waitfor 10 munged [ -S "$W/munge.sock" ]
slurmctld -D -i -f "$SLURM_CONF" > "$W/slurmctld.stderr" 2>&1 & PIDS+=($!)
slurmd -D -f "$SLURM_CONF" > "$W/slurmd.stderr" 2>&1 & PIDS+=($!)
node_idle() {
  local p
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || fail "a SLURM daemon (pid $p) exited at start"; done
  [[ "$(sinfo -h -n "$H" -o %T 2>/dev/null)" == idle ]]
}
waitfor 30 "node $H idle in sinfo" node_idle
PMIX="$(srun --mpi=list 2>&1 || true)"
grep -qw pmix <<< "$PMIX" || fail "srun has no PMIx plugin (srun --mpi=list: $PMIX)"
echo "slurm_test: one-node cluster up ($H, ports $PCTLD/$PSLURMD) after $((SECONDS - T0))s"

# ---- the cohort (the job tiles it itself) ----------------------------------------------------
OV=("synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache" synth.num_slides=4
    synth.val_fraction=0 synth.test_fraction=0.5
    synth.width=2048 synth.height=1536 train.batch_size=16 train.progress=lines train.log_every=1
    train.threads=1 data.workers=1)
"$BIN" synth -c "$SRC/configs/demo.yaml" "${OV[@]}" > /dev/null
# The #SBATCH lines ask for 2 nodes x 4 tasks, a GPU and 8 cores per task; one node with 2 cores
# and no GPU can run 2 tasks of 1 core. Without --gpus-per-task=0, sbatch says "Invalid generic
# resource (gres) specification".
SB=(sbatch --parsable -N1 -n2 --ntasks-per-node=2 -c1 --gpus-per-task=0)
# The jobs run the binary through a link of their own, so that other tests' `pgrep -f "$BIN train"`
# (e.g. preempt_test.sh, run alongside by ctest -j) never find, stop or signal these ranks.
mkdir -p "$W/bin"; ln -s "$(readlink -f "$BIN")" "$W/bin/slidetrain"
JBIN="$W/bin/slidetrain"
export SLIDETRAIN_BIN="$JBIN"
cd "$W"

job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }
job_done() {
  case "$(job_field "$1" JobState)" in
    COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED) return 0 ;;
  esac
  return 1
}
check_run() {  # check_run <name> <run_dir> <output file>
  local name="$1" run="$2" out="$3" f
  grep -q "^tiled 4/4 slides" "$out" || fail "$name: no tile output in $out"
  grep -Eq "^training: .*, 2 ranks," "$out" || fail "$name: train did not run on 2 ranks"
  for f in weights.pt patches.csv slides.csv report.html; do
    [[ -s "$run/$f" ]] || fail "$name: $run/$f missing"
  done
  grep -q "^wrote $run/patches.csv" "$out" || fail "$name: predict did not report its outputs"
}

# 1. The plain job: tile, train on 2 srun tasks, predict.
J1="$("${SB[@]}" -o "$W/plain.out" "$SRC/launch/slurm.sbatch" "$SRC/configs/demo.yaml" "${OV[@]}" \
  train.epochs=1 "run_dir=$W/plain")" || fail "sbatch refused the job"
waitfor 120 "job $J1 to end" job_done "$J1"
[[ "$(job_field "$J1" JobState)" == COMPLETED && "$(job_field "$J1" ExitCode)" == 0:0 ]] ||
  fail "job $J1: $(job_field "$J1" JobState) exit $(job_field "$J1" ExitCode)"
check_run plain "$W/plain" "$W/plain.out"
echo "slurm_test: sbatch launch/slurm.sbatch: tile, train on 2 ranks (srun --mpi=pmix), predict OK after $((SECONDS - T0))s"

# train_pid <job> <rank>: pid of that rank's train task (its environment says which).
train_pid() {
  local p
  for p in $(pgrep -f "$JBIN train" || true); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$1" || continue
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "SLURM_PROCID=$2" && { echo "$p"; return 0; }
  done
  return 1
}
# at_step3 <job> <output> <epochs>: waits for step 3 of epoch 1, polling fast (a step is ~50 ms).
at_step3() {
  local end=$((SECONDS + 120))
  until grep -q "^epoch 1/$3 .* 3/9" "$2" 2>/dev/null; do
    job_done "$1" && fail "job $1 ended before step 3"
    ((SECONDS < end)) || fail "timed out waiting for step 3 of job $1"
    sleep 0.02
  done
}
pending() {  # pending <pid> <signal number>: the signal waits in the process's pending sets
  local k v
  while read -r k v; do
    [[ "$k" == ShdPnd: || "$k" == SigPnd: ]] && (( 0x$v & (1 << ($2 - 1)) )) && return 0
  done < "/proc/$1/status"
  return 1
}

# 2. Requeue: SIGUSR1 to the batch shell mid-training (4 epochs of 9 steps).
J2="$("${SB[@]}" -o "$W/requeue.out" "$SRC/launch/slurm.sbatch" "$SRC/configs/demo.yaml" "${OV[@]}" \
  train.epochs=4 "run_dir=$W/requeue")" || fail "sbatch refused the job"
started() { grep -q "^training: " "$W/requeue.out" 2>/dev/null || job_done "$J2"; }
waitfor 120 "job $J2 to start training" started
R1="$(train_pid "$J2" 1)" || fail "no train task of rank 1 in job $J2"
at_step3 "$J2" "$W/requeue.out" 4
# Rank 1 is stopped while the signal travels (batch shell -> its trap -> srun -> slurmd ->
# tasks), so that the ranks cannot finish training first however fast the steps are; any rank
# that has it stops them all at the next step.
kill -STOP "$R1"
scancel --signal=USR1 --batch "$J2" || { kill -CONT "$R1"; fail "scancel --signal=USR1 --batch $J2"; }
end=$((SECONDS + 10))
until pending "$R1" 10 || ((SECONDS >= end)); do sleep 0.05; done
pending "$R1" 10 || echo "slurm_test: note: SIGUSR1 not pending on rank 1 after 10 s; continuing it"
kill -CONT "$R1"
restarted() { [[ "$(job_field "$J2" Restarts)" -ge 1 ]] && job_done "$J2"; }
job_done "$J2" || waitfor 150 "job $J2 to be requeued and to end" restarted
[[ "$(job_field "$J2" JobState)" == COMPLETED && "$(job_field "$J2" Restarts)" == 1 ]] ||
  fail "job $J2: $(job_field "$J2" JobState), restarts $(job_field "$J2" Restarts) (expected COMPLETED after 1 requeue)"
PRE="$(grep -Eo "^preempted: SIGUSR1 on rank [01]; every rank stopped after step [0-9]+ \(epoch [0-9]+, batch [0-9]+ of 9\)" "$W/requeue.out")" ||
  fail "job $J2: no preemption by SIGUSR1"
STEP="$(sed -E 's/.*after step ([0-9]+) .*/\1/' <<< "$PRE")"
((STEP < 36)) || fail "job $J2: preempted after the last step ($PRE)"
grep -q "^slidetrain: preempted with a checkpoint; requeueing job $J2" "$W/requeue.out" ||
  fail "job $J2: the script did not requeue"
grep -Eq "^resumed from $W/requeue/checkpoints/last.pt: epoch [0-9]+, step $STEP," "$W/requeue.out" ||
  fail "job $J2: the second run did not resume from the checkpoint of step $STEP"
grep -q "^epoch 4/4  loss" "$W/requeue.out" || fail "job $J2: the second run did not finish epoch 4"
check_run requeue "$W/requeue" "$W/requeue.out"
echo "slurm_test: ${PRE#preempted: }; requeued; resumed at step $STEP; predicted; after $((SECONDS - T0))s"

# 3. scancel (SIGTERM to every step, the batch shell included): the ranks write the checkpoint
#    and exit 75, the job is cancelled, not requeued.
J3="$("${SB[@]}" -o "$W/cancel.out" "$SRC/launch/slurm.sbatch" "$SRC/configs/demo.yaml" "${OV[@]}" \
  train.epochs=4 "run_dir=$W/cancel")" || fail "sbatch refused the job"
at_step3 "$J3" "$W/cancel.out" 4
scancel "$J3" || fail "scancel $J3"
waitfor 60 "job $J3 to end" job_done "$J3"
[[ "$(job_field "$J3" JobState)" == CANCELLED && "$(job_field "$J3" Restarts)" == 0 ]] ||
  fail "job $J3: $(job_field "$J3" JobState), restarts $(job_field "$J3" Restarts) (expected CANCELLED, not requeued)"
grep -Eq "^preempted: SIG(TERM|USR1) on rank [01]; every rank stopped after step [0-9]+ " "$W/cancel.out" ||
  fail "job $J3: the ranks did not stop with a checkpoint"
grep -q "^slidetrain: stopped by SIGTERM with a checkpoint; not requeued" "$W/cancel.out" ||
  fail "job $J3: no 'not requeued' line"
[[ -s "$W/cancel/checkpoints/last.pt" ]] || fail "job $J3: no checkpoint"
echo "slurm_test: scancel: $(grep -o '^preempted: [^;]*; every rank stopped after step [0-9]*' "$W/cancel.out"); cancelled, not requeued"

# 4. mpirun inside an allocation (OpenMPI takes the nodes and slots from SLURM).
cat > "$W/mpirun.sh" <<EOF
#!/bin/bash
mpirun --bind-to none "$JBIN" train -c "$SRC/configs/demo.yaml" ${OV[*]} train.epochs=1 train.max_steps=2 run_dir=$W/mpirun
EOF
J4="$(sbatch --parsable -N1 -n2 -c1 -o "$W/mpirun.out" "$W/mpirun.sh")" || fail "sbatch refused the mpirun job"
waitfor 120 "job $J4 to end" job_done "$J4"
[[ "$(job_field "$J4" JobState)" == COMPLETED ]] || fail "mpirun job $J4: $(job_field "$J4" JobState)"
grep -Eq "^training: .*, 2 ranks," "$W/mpirun.out" || fail "mpirun job: not 2 ranks"
[[ -s "$W/mpirun/weights.pt" ]] || fail "mpirun job: no weights.pt"
echo "slurm_test: mpirun -> 2 ranks inside an sbatch allocation OK"

# 5. srun without PMIx fails at once instead of training twice alone: Debian bookworm's OpenMPI
#    4.1 (no SLURM PMI-1/PMI-2 support) stops in MPI_Init with its own message; an MPI that starts
#    one singleton world per task (OpenMPI 5) gets slidetrain's, which shows the srun command.
#    Nothing is written either way.
rc=0
timeout 60 srun -N1 -n2 -c1 --mpi=none "$JBIN" train -c "$SRC/configs/demo.yaml" "${OV[@]}" \
  "run_dir=$W/nopmi" > "$W/nopmi.out" 2>&1 || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "srun --mpi=none: exit $rc (expected a fast failure)"
if grep -q 'direct launched using "srun"' "$W/nopmi.out"; then
  how="by OpenMPI in MPI_Init"
elif grep -q "says world size 2 but MPI_COMM_WORLD has 1 process" "$W/nopmi.out" &&
     grep -q "srun -n 2 --mpi=pmix" "$W/nopmi.out"; then
  how="by slidetrain (singleton worlds), showing the srun --mpi=pmix command"
else
  fail "srun --mpi=none: neither OpenMPI's nor slidetrain's message"
fi
[[ -e "$W/nopmi" ]] && fail "srun --mpi=none: it wrote a run directory"
echo "slurm_test: srun --mpi=none refused $how (exit $rc)"
echo "slurm_test: all OK in $((SECONDS - T0))s"
