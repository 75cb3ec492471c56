#!/usr/bin/env bash
# Installs what is missing, builds (launch/setup.sh) and runs every test with CTest, the
# multi-rank ones under mpirun. Extra arguments go to ctest (e.g. -R SyncBatchNorm).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/launch/setup.sh"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-2}" "$@"
