#!/usr/bin/env bash
# Idempotent setup: installs missing Debian packages, then configures and builds Release in build/.
# Usage: launch/setup.sh            (BUILD_DIR, BUILD_TYPE and JOBS may be set in the environment)
#        launch/setup.sh --packages [NAME...]  (only install the missing packages of the list,
#                                   or of the NAMEs; tests/e2e/slurm_test.sh: slurm-wlm munge)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
BUILD_TYPE="${BUILD_TYPE:-Release}"
JOBS="${JOBS:-$(nproc)}"

PACKAGES=(build-essential cmake pkg-config ccache
  libtorch-dev libopenmpi-dev openmpi-bin
  libopenslide-dev openslide-tools libvips-dev libvips-tools libyaml-cpp-dev libgtest-dev
  libtiff-dev libjpeg62-turbo-dev
  python3-torch python3-openslide python3-numpy strace
  libhdf5-dev python3-h5py  # feature files (src/mil/Hdf5.h) and the tests that read them
  slurm-wlm munge  # a one-node SLURM for tests/e2e/slurm_test.sh
  chromium)  # headless, for tests/e2e/report_browser_test.sh (report.html's charts in a browser)

ONLY_PACKAGES=0
if [[ "${1:-}" == --packages ]]; then
  ONLY_PACKAGES=1; shift
  (($#)) && PACKAGES=("$@")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing Debian packages; run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
((ONLY_PACKAGES)) && exit 0

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  # -Werror: the code builds warning-free on this toolchain (and on trixie's, launch/compat.sh).
  cmake -S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DSLIDETRAIN_WERROR=ON
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
