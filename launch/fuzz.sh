#!/usr/bin/env bash
# libFuzzer run of the parsers of the files users hand us (docs/testing.md "Fuzzing"): builds the
# fuzz targets with clang (-fsanitize=fuzzer,address,undefined; only the parsers' libraries, no
# torch or MPI) in a separate build folder, then fuzzes each target for SECS seconds from its seed
# corpus (tests/fuzz/corpus/<target>/, only read) and the build folder's corpus (grows from run to
# run). Prints the executions of each target; fails when one crashes, leaving the input under
# $FUZZ_BUILD_DIR/fuzz-artifacts/<target>/.
#
#   launch/fuzz.sh [SECS]        default 30 s per target (launch/test.sh --fuzz [SECS] runs this)
#   FUZZ_TARGETS="config cohort" launch/fuzz.sh 600     only these targets
#   FUZZ_BUILD_DIR (default build-fuzz/), JOBS (build parallelism)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-30}"
BUILD_DIR="${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${JOBS:-$(nproc)}"
[[ "$SECS" =~ ^[0-9]+$ && "$SECS" -gt 0 ]] || { echo "fuzz: SECS must be a positive integer, got '$SECS'" >&2; exit 2; }

PACKAGES=(clang libclang-rt-14-dev cmake pkg-config ccache
  libopenslide-dev libvips-dev libyaml-cpp-dev libtiff-dev libjpeg62-turbo-dev)
"$ROOT/launch/setup.sh" --packages "${PACKAGES[@]}"  # installs the missing ones only

t0=$SECONDS
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSLIDETRAIN_FUZZ=ON
fi
cmake "$BUILD_DIR" -DSLIDETRAIN_FUZZ_SECONDS="$SECS" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "fuzz: built in $((SECONDS - t0)) s"

targets=()
if [[ -n "${FUZZ_TARGETS:-}" ]]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  for d in "$ROOT"/tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
mkdir -p "$BUILD_DIR/fuzz-logs"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$BUILD_DIR/tests/fuzz/fuzz_$t"
  [[ -x "$bin" ]] || { echo "fuzz: no target '$t' ($bin)" >&2; exit 2; }
  work="$BUILD_DIR/fuzz-corpus/$t" artifacts="$BUILD_DIR/fuzz-artifacts/$t"
  mkdir -p "$work" "$artifacts"
  dict=()
  [[ -f "$ROOT/tests/fuzz/$t.dict" ]] && dict=("-dict=$ROOT/tests/fuzz/$t.dict")
  log="$BUILD_DIR/fuzz-logs/$t.log"
  echo "fuzz: $t for ${SECS} s (log: $log)"
  rc=0
  "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dict[@]}" "$work" "$ROOT/tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  line="$(printf '%-12s %10s executions  %s  corpus %s files' "$t" "${execs:-?}" "${cov:-}" \
          "$(find "$work" -type f | wc -l)")"
  if ((rc != 0)); then
    line+="  CRASH (exit $rc)"
    failed+=("$t")
    grep -E "ERROR:|runtime error|fuzz invariant failed|deadly signal|Test unit written" "$log" | head -5 >&2 || true
  fi
  summary+=("$line")
  echo "  $line"
done
echo "fuzz: summary (${SECS} s per target, $((SECONDS - t0)) s in all)"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}; the inputs are under $BUILD_DIR/fuzz-artifacts/ (replay one: " \
       "$BUILD_DIR/tests/fuzz/fuzz_<target> FILE)" >&2
  exit 1
fi
