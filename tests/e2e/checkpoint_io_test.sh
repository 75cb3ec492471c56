#!/usr/bin/env bash
# Checkpoint I/O (issue 13, item 5).
# 1. Durable: every checkpoint (last.pt, best.pt) and weights.pt is written to NAME.tmp, which is
#    fsync'ed, renamed to NAME, and then the folder is fsync'ed - read off strace.
# 2. Rank 0 reads the checkpoint on resume and broadcasts it: two ranks in different working
#    folders (relative run_dir), so only rank 0's run_dir holds last.pt. The resumed
#    run must match a run that was never interrupted, bit for bit (today every rank reads
#    run_dir/checkpoints/last.pt itself: rank 1 would start over and the job would hang).
# Usage: checkpoint_io_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$(realpath "$1")"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY="${SLIDETRAIN_TORCH_PYTHON:-/usr/bin/python3}"
command -v strace >/dev/null || fail "strace is missing (launch/setup.sh installs it)"
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      synth.num_slides=4 synth.width=2048 synth.height=1536 train.batch_size=16 train.progress=none
      synth.val_fraction=0 synth.test_fraction=0.5
      train.threads=1 data.workers=1 schedule.name=constant train.timeout_s=30)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$BIN" tile "${ARGS[@]}" > /dev/null

# 1. fsync before rename, folder fsync after.
strace -f -qq -e trace=openat,fsync,rename,renameat,renameat2,close -o "$W/trace" \
  "$BIN" train "${ARGS[@]}" train.epochs=1 "run_dir=$W/s" > "$W/s.log" 2>&1 || { cat "$W/s.log"; fail "train under strace"; }
/usr/bin/python3 - "$W/trace" "$W/s" <<'PY' || fail "checkpoint files are not made durable"
import re, sys
lines = [re.sub(r"^\d+\s+", "", l.rstrip("\n")) for l in open(sys.argv[1])]
run = sys.argv[2]
def check(final):
    tmp = final + ".tmp"
    folder = final.rsplit("/", 1)[0]
    ren = [i for i, l in enumerate(lines) if re.match(r'rename(at2?)?\(.*"%s".*"%s".*= 0' % (re.escape(tmp), re.escape(final)), l)]
    if not ren:
        sys.exit("FAIL: no rename of %s to %s" % (tmp, final))
    r = ren[-1]
    # Last open of the tmp file before the rename, then fsync of that descriptor before the rename.
    fd = None
    for i in range(r - 1, -1, -1):
        m = re.match(r'openat\(.*"%s", [^)]*\) = (\d+)' % re.escape(tmp), lines[i])
        if m and "O_RDONLY" in lines[i] and "O_CREAT" not in lines[i]:
            fd, at = m.group(1), i
            break
    if fd is None or not any(re.match(r"fsync\(%s\) += 0" % fd, l) for l in lines[at:r]):
        sys.exit("FAIL: %s is not fsync'ed before the rename" % tmp)
    for i in range(r + 1, len(lines)):
        m = re.match(r'openat\(.*"%s", [^)]*O_DIRECTORY[^)]*\) = (\d+)' % re.escape(folder), lines[i])
        if m:
            if any(re.match(r"fsync\(%s\) += 0" % m.group(1), l) for l in lines[i:i + 4]):
                return
    sys.exit("FAIL: folder %s is not fsync'ed after renaming %s" % (folder, final))
for f in ("checkpoints/last.pt", "weights.pt"):
    check(run + "/" + f)
print("last.pt and weights.pt: fsync(tmp) < rename < fsync(folder)")
PY

# 2. Resume from rank 0's file only.
mkdir -p "$W/r0" "$W/r1"
# Each rank in its own working folder (not mpirun's MPMD `A : B` form: OpenMPI 5.0's prterun,
# Debian trixie's, crashes on it).
cat > "$W/in_rank_dir.sh" <<SH
#!/usr/bin/env bash
cd "$W/r\$OMPI_COMM_WORLD_RANK" && exec "\$@"
SH
chmod +x "$W/in_rank_dir.sh"
mpmd() {  # rank 0 in $W/r0, rank 1 in $W/r1, run_dir=run (relative)
  mpirun -np 2 --oversubscribe --bind-to none "$W/in_rank_dir.sh" "$BIN" train "${ARGS[@]}" run_dir=run "$@"
}
mpirun -np 2 --oversubscribe --bind-to none "$BIN" train "${ARGS[@]}" train.epochs=2 "run_dir=$W/ref" \
  > "$W/ref.log" 2>&1 || { cat "$W/ref.log"; fail "uninterrupted run"; }
mpmd train.epochs=1 > "$W/e1.log" 2>&1 || { cat "$W/e1.log"; fail "first epoch"; }
[[ -f "$W/r0/run/checkpoints/last.pt" && ! -e "$W/r1/run/checkpoints/last.pt" ]] ||
  fail "expected last.pt in rank 0's run_dir only"
mpmd train.epochs=2 > "$W/e2.log" 2>&1 || { cat "$W/e2.log"; fail "resume with last.pt on rank 0 only"; }
grep -q "resumed from run/checkpoints/last.pt: epoch 2" "$W/e2.log" || { cat "$W/e2.log"; fail "did not resume"; }
"$PY" - "$W/ref/weights.pt" "$W/r0/run/weights.pt" <<'PY' || fail "resumed weights differ"
import sys, torch
a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
bad = [k for k in a if not torch.equal(a[k], b[k])]
if bad or list(a) != list(b):
    sys.exit("FAIL: not bit-identical: %s" % bad[:5])
PY
echo "resume with the checkpoint on rank 0 only: bit-identical to the uninterrupted run"
