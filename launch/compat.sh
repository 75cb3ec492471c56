#!/usr/bin/env bash
# Builds slidetrain against today's libtorch and runs the whole ctest suite there:
#   launch/compat.sh           Debian trixie, libtorch 2.6 (CPU), python3-torch 2.6
#   launch/compat.sh --cuda    Debian trixie, libtorch-cuda 2.6 (CUDA 12), CUDA toolkit 12.4,
#                              NCCL 2.22, SLIDETRAIN_WITH_NCCL=ON: every target compiles and links
#                              and every test that needs no GPU passes (GPU tests skip, saying why)
# Both build with -Werror. Extra arguments go to ctest (e.g. -R Trainer). Left out there: tests
# labelled long, and those labelled host_only, which do not depend on libtorch's version (the
# report and viewer pages in Chromium, the study scripts and their configs, a SLURM cluster):
# they run on the host in launch/test.sh. .ci/run runs --cuda only: the CUDA libtorch 2.6 runs
# the same suite on the CPU; the CPU mode adds the build without NCCL (SLIDETRAIN_WITH_NCCL=OFF).
#
# The trixie root is built once with debootstrap and cached outside the clone (SLIDETRAIN_COMPAT_CACHE,
# default /var/cache/slidetrain-compat; ~3 GB for the CPU root, ~12 GB for the CUDA one) and reused
# by later runs, as is its build folder. Needs root (debootstrap, chroot, bind mounts) and Debian's
# package registry. In the CUDA root, nvidia-cudnn's installer (which downloads cuDNN from NVIDIA)
# is declined and a stub libcudnn.so.9 - one dummy function per cudnn* symbol libtorch_cuda.so
# imports - is built so that programs link; nothing calls it on a GPU-less machine, and it never
# leaves the compat root. docs/benchmarks.md records how long each mode takes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE=cpu
if [[ "${1:-}" == "--cuda" ]]; then MODE=cuda; shift; fi
CACHE="${SLIDETRAIN_COMPAT_CACHE:-/var/cache/slidetrain-compat}"
MIRROR="${SLIDETRAIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
JOBS="${JOBS:-$(nproc)}"
log() { echo "compat($MODE): $*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "compat: needs root (debootstrap, chroot and bind mounts); run it as root or with sudo" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/$MODE.lock"
flock 9  # one compat run per mode at a time

COMMON=(build-essential cmake pkg-config ccache ninja-build libopenmpi-dev openmpi-bin
  libopenslide-dev openslide-tools libvips-dev libvips-tools libyaml-cpp-dev libgtest-dev
  libtiff-dev libjpeg-dev python3-openslide python3-numpy strace libhdf5-dev python3-h5py chromium)
if [[ $MODE == cpu ]]; then
  PACKAGES=("${COMMON[@]}" libtorch-dev python3-torch)
  CMAKE_FLAGS=(-DSLIDETRAIN_WITH_NCCL=OFF)
else
  # python3-torch-cuda replaces the CPU python3-torch that libtorch-cuda-2.6 removes.
  PACKAGES=("${COMMON[@]}" libtorch-cuda-dev nvidia-cuda-toolkit nvidia-cuda-dev libnccl-dev
    python3-torch-cuda)
  # No benchmarks: gpu_check.sh --dry-run builds bench_gpu_step in this root, the CPU mode all.
  CMAKE_FLAGS=(-DSLIDETRAIN_WITH_NCCL=ON -DSLIDETRAIN_CUDA_ROOT=/usr -DSLIDETRAIN_BUILD_BENCH=OFF)
fi

BASE="$CACHE/trixie-base"
if [[ ! -f "$BASE/.slidetrain-complete" ]]; then
  log "debootstrap trixie into $BASE (about a minute)"
  rm -rf "$BASE"
  debootstrap --variant=minbase trixie "$BASE" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  echo "deb $MIRROR trixie main contrib non-free" > "$BASE/etc/apt/sources.list"
  touch "$BASE/.slidetrain-complete"
fi

R="$CACHE/trixie-$MODE"
MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bindmount() {  # bindmount SRC DEST
  mkdir -p "$2"
  mount --bind "$1" "$2"
  MOUNTS+=("$2")
}
[[ -d "$R" ]] || { log "creating $R from the base root"; cp -a "$BASE" "$R"; }
for m in proc sys dev dev/pts dev/shm; do bindmount "/$m" "$R/$m"; done
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp /etc/hosts "$R/etc/hosts"

STAMP="$(printf '%s\n' "${PACKAGES[@]}" | sha256sum | cut -c1-16)"
if [[ "$(cat "$R/.slidetrain-packages" 2>/dev/null)" != "$STAMP" ]]; then
  log "installing ${#PACKAGES[@]} packages into $R (a few minutes; the CUDA set downloads ~2.7 GB)"
  chroot "$R" env DEBIAN_FRONTEND=noninteractive bash -euc '
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends debconf-utils >/dev/null
    # nvidia-cudnn downloads cuDNN from NVIDIA at install time: decline (no internet here).
    echo "nvidia-cudnn nvidia-cudnn/question select I Decline" | debconf-set-selections
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null' _ "${PACKAGES[@]}" \
    > "$CACHE/install-$MODE.log" 2>&1 || { tail -30 "$CACHE/install-$MODE.log" >&2; exit 1; }
  echo "$STAMP" > "$R/.slidetrain-packages"
fi

if [[ $MODE == cuda ]]; then
  # Every cudnn* symbol any libtorch library imports (libtorch_cuda.so, libtorch_python.so, ...),
  # so that both C++ programs and python3-torch-cuda load. Rebuilt when the set changes.
  chroot "$R" bash -euc '
    mkdir -p /opt/slidetrain-cudnn-stub && cd /opt/slidetrain-cudnn-stub
    libs=$(find /usr/lib -name "lib*torch*.so*" -type f; find /usr/lib -name "libc10*.so*" -type f)
    for l in $libs; do nm -D --undefined-only "$l" 2>/dev/null; done | awk "{print \$2}" |
      grep "^cudnn" | sed "s/@.*//" | sort -u > symbols.new
    [[ -s symbols.new ]] || { echo "no cudnn symbols found in the libtorch libraries" >&2; exit 1; }
    if ! cmp -s symbols.new symbols.txt || [[ ! -f libcudnn.so.9 ]]; then
      mv symbols.new symbols.txt
      { echo "/* stub: lets libtorch load without cuDNN; nothing calls it without a GPU */";
        while read -r s; do echo "int $s(void) { return 1; }"; done < symbols.txt; } > stub.c
      echo "libcudnn.so.9 { global: *; };" > stub.map
      gcc -shared -fPIC -o libcudnn.so.9 stub.c -Wl,-soname,libcudnn.so.9 -Wl,--version-script,stub.map
      echo /opt/slidetrain-cudnn-stub > /etc/ld.so.conf.d/slidetrain-cudnn-stub.conf
      ldconfig
      echo "compat(cuda): stub libcudnn.so.9 with $(wc -l < symbols.txt) symbols (compat root only)"
    fi'
fi

# oneDNN on this CPU (launch/onednn_guard.sh): the tests' environment.
source "$ROOT/launch/onednn_guard.sh"
ONEDNN_ENV="$(onednn_guard "$R")"
[[ -z "$ONEDNN_ENV" ]] || log "this CPU makes trixie's oneDNN 3.6 divide by zero in a strided convolution's backward (SIGFPE): the tests run with $ONEDNN_ENV (launch/onednn_guard.sh)"

bindmount "$ROOT" "$R/compat/src"
[[ -d "$ROOT/../shared" ]] && bindmount "$ROOT/../shared" "$R/compat/shared"
log "building in $R/compat/build (-Werror) and running ctest"
start=$(date +%s)
chroot "$R" env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 CCACHE_DIR=/compat/ccache \
  JOBS="$JOBS" bash -euc '
  cd /compat
  cmake -S src -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSLIDETRAIN_WERROR=ON "$@" > cmake.log ||
    { cat cmake.log >&2; exit 1; }
  grep -E "slidetrain:|Torch|CUDA" cmake.log || true
  cmake --build build -j "$JOBS" -- -k 0  # every error in one run
  echo "torch: $(python3 -c "import torch; print(torch.__version__)")"' _ "${CMAKE_FLAGS[@]}"
log "built in $(( $(date +%s) - start )) s"
chroot "$R" env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 $ONEDNN_ENV bash -euc '
  cd /compat/build && ctest --output-on-failure --timeout 900 -j "${TEST_JOBS:-2}" -LE "^(long|host_only)$" "$@"' _ "$@"
log "passed in $(( $(date +%s) - start )) s"
