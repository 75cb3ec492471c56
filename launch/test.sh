#!/usr/bin/env bash
# Installs what is missing, builds (launch/setup.sh) and runs the tests with CTest, the
# multi-rank ones under mpirun. docs/testing.md says what each mode covers and how long it takes.
#
#   launch/test.sh [CTEST ARGS]   the CI suite: every test except those labelled `long`
#   launch/test.sh --all          the CI suite + `long` tests + the sanitizer and fuzz builds
#                                 + launch/compat.sh (CPU libtorch 2.6, no NCCL; as root)
#   launch/test.sh --sanitize     AddressSanitizer + UBSan build of wsi/ and distributed/ suites
#   launch/test.sh --fuzz [SECS]  libFuzzer build (clang), each target run SECS seconds
# Extra arguments go to ctest (e.g. -R SyncBatchNorm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
case "${1:-}" in
  --sanitize) shift; exec "$ROOT/launch/sanitize.sh" "$@" ;;
  --fuzz) shift; exec "$ROOT/launch/fuzz.sh" "$@" ;;
  --all)
    shift
    "$ROOT/launch/setup.sh"
    (cd "${BUILD_DIR:-$ROOT/build}" && ctest --output-on-failure --timeout 1800 -j "${TEST_JOBS:-2}" "$@")
    for extra in sanitize fuzz; do
      if [[ -x "$ROOT/launch/$extra.sh" ]]; then "$ROOT/launch/$extra.sh"; fi
    done
    if [[ $(id -u) -eq 0 ]]; then "$ROOT/launch/compat.sh"; else echo "test.sh --all: launch/compat.sh needs root, not run"; fi
    exit 0 ;;
esac
"$ROOT/launch/setup.sh"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-2}" -LE long "$@"
