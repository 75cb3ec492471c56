#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the wsi/ and distributed/ suites, the
# multi-rank tests (mpirun, 2 and 3 ranks) and the DistFault jobs included.
#
#   launch/sanitize.sh [CTEST ARGS]      (also: launch/test.sh --sanitize [CTEST ARGS])
#
# Builds slidetrain's own code with -DSLIDETRAIN_SANITIZE=ON (RelWithDebInfo) in SAN_BUILD_DIR
# (default build-asan/), only the targets these tests need, then runs the ctest tests labelled
# wsi or distributed. Any ASan/LSan/UBSan report ends the process with a non-zero exit, so it fails
# its test. Suppressions (third-party code only) live in tests/sanitizers/lsan.supp.
# Extra arguments go to ctest (e.g. -R SyncBatchNorm). JOBS and TEST_JOBS as in launch/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${SAN_BUILD_DIR:-$ROOT/build-asan}"
JOBS="${JOBS:-$(nproc)}"

# The sanitizer runtimes ship with g++ (libasan8, libubsan1 on bookworm); install them if an
# unusual setup left them out. The other packages come from launch/setup.sh's list.
PACKAGES=(build-essential cmake pkg-config ccache libasan8 libubsan1
  libtorch-dev libopenmpi-dev openmpi-bin
  libopenslide-dev libvips-dev libyaml-cpp-dev libgtest-dev libtiff-dev libjpeg62-turbo-dev)
"$ROOT/launch/setup.sh" --packages "${PACKAGES[@]}"  # installs the missing ones only

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSLIDETRAIN_SANITIZE=ON -DSLIDETRAIN_BUILD_BENCH=OFF
fi
# Only what the wsi/ and distributed/ tests run (tests/CMakeLists.txt: one executable per folder,
# one per *MpiTest.cpp, the fault helper); the core library, the program and the benchmarks are
# not built here.
TARGETS=(wsi_tests dist_tests dist_fault_helper)
for f in "$ROOT"/tests/wsi/*MpiTest.cpp "$ROOT"/tests/distributed/*MpiTest.cpp; do
  if [[ -e "$f" ]]; then TARGETS+=("$(basename "$f" .cpp)"); fi
done
cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}"

# Local mpirun ranks inherit mpirun's environment, so these reach every rank (each rank's report
# carries its own pid). fast_unwind_on_malloc=0: full allocation stacks, which the suppressions
# need to see past the frame-pointer-less Debian libraries (tests/sanitizers/lsan.supp).
SUPP="$ROOT/tests/sanitizers/lsan.supp"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:print_stacktrace=1:fast_unwind_on_malloc=0:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

cd "$BUILD_DIR"
ctest --output-on-failure --timeout 1800 -j "${TEST_JOBS:-2}" -L '^(wsi|distributed)$' "$@"
