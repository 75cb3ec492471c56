#!/usr/bin/env bash
# Bad input gives a one-line error naming the file, key or program, and a non-zero exit.
# Usage: bad_input_test.sh <slidetrain binary> <source dir>
set -uo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect <regex> <command...>: non-zero exit, and the last stderr line matches.
expect() {
  local re="$1"; shift
  "$@" >"$W/out" 2>"$W/err"; local rc=$?
  [[ $rc -ne 0 ]] || fail "exit 0 for: $*"
  local last; last="$(tail -n 1 "$W/err")"
  [[ "$last" =~ $re ]] || fail "'$last' does not match /$re/ for: $*"
  echo "ok: $last"
}

printf 'train:\n  batchsize: 3\n' > "$W/bad_key.yaml"
expect "bad_key.yaml line 2: unknown key 'train.batchsize'" "$BIN" config -c "$W/bad_key.yaml"
printf 'train:\n  epochs: many\n' > "$W/bad_type.yaml"
expect "bad_type.yaml line 2: train.epochs: expected integer" "$BIN" config -c "$W/bad_type.yaml"
expect "override 'optimizer.nme=adam'" "$BIN" config optimizer.nme=adam

printf 'slide_id,path,label,split\ns1,missing.svs,tumor,train\ns2,%s,normal,train\n' \
  "$SRC/../shared/data/slides/CMU-1-Small-Region.svs" > "$W/cohort.csv"
expect "missing.svs" "$BIN" tile cohort="$W/cohort.csv" cache_dir="$W/cache" on_bad_slide=fail
# skip policy: the bad slide is listed with its reason, the good one tiled, exit 0.
"$BIN" tile cohort="$W/cohort.csv" cache_dir="$W/cache" on_bad_slide=skip tiling.min_tissue=0.1 > "$W/skip.log" 2>&1 \
  || fail "skip policy should exit 0"
grep -q "skipped: s1 (.*missing.svs)" "$W/skip.log" || fail "skipped slide not reported"
grep -q "tiled 1/2 slides" "$W/skip.log" || fail "summary line missing"

# No mpirun on PATH: the launcher names the program.
expect "'mpirun' not found on PATH" env PATH=/nonexistent /bin/bash "$SRC/launch/mpirun.sh" 2 train
echo "bad input OK"
