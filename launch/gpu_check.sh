#!/usr/bin/env bash
# The prepared GPU check: builds slidetrain against the libtorch of a machine's own CUDA PyTorch
# and measures the GPU path. Every step writes its own line to OUT_DIR/gpu_check.jsonl as it ends
# (name, ok, seconds, figures, the end of its log when it failed) and a failing step does not stop
# the later ones; OUT_DIR/gpu_check.json merges the latest line of each step, OUT_DIR/gpu_check.log
# holds everything printed, and a summary table ends the run. Exit status 1 when a step failed.
#
#   launch/gpu_check.sh --prepare          On the Debian bookworm build machine (root, apt): fills
#                                          .gpu_carry/ (git-ignored, < 64 MiB with the tree) with
#                                          the .deb files of OpenSlide, yaml-cpp, OpenMPI, libtiff,
#                                          libjpeg, HDF5, GoogleTest and pkgconf and their
#                                          libraries, and a small synthetic cohort made by
#                                          build/slidetrain synth.
#   launch/gpu_check.sh [--steps S] OUT_DIR
#                                          On the GPU machine (one NVIDIA GPU, no network, python3
#                                          with a CUDA PyTorch and its NCCL and cuDNN wheels, nvcc,
#                                          CMake, ninja; no Debian -dev packages), with .gpu_carry
#                                          carried beside the tree.
#   launch/gpu_check.sh --dry-run [--steps S] OUT_DIR
#                                          Here, as root: the same script inside the CUDA compat root
#                                          (launch/compat.sh --cuda), on the CPU, with small sizes.
#   --steps S   only these steps: a comma-separated list of names (below), or "failed" for the
#               steps whose latest line in OUT_DIR/gpu_check.jsonl is not ok (or missing).
# A second run on the same machine reuses the unpacked packages and the binaries (ninja rebuilds
# only what changed, nothing for the same tree; delete $SLIDETRAIN_GPU_WORK, default
# /tmp/slidetrain-gpu-check, to start over).
# SLIDETRAIN_GPU_CHECK_FAIL=<step> makes that step fail on purpose (tests/e2e/gpu_check_test.sh).
#
# Set-up (before the build): cuDNN from the nvidia-cudnn wheel (libtorch's CMake config looks for
# an unversioned libcudnn.so; the wheel has libcudnn.so.9), the wheels' nvidia/*/lib folders on the
# runtime path, torch._C._GLIBCXX_USE_CXX11_ABI checked against the carried C++ libraries, and an
# MPI smoke test (mpirun -np 1 true) of the carried, relocated OpenMPI. Steps (docs/benchmarks.md,
# "GPU check"):
#   nccl_tests          NcclComm's GPU tests (dist_tests NcclComm.*)
#   cuda_vs_cpu         the trainer's step (SyncBatchNorm on) on CUDA and on the CPU from the same
#                       weights and batches, TF32 off: the largest weight difference after 50 steps
#   trainer             slidetrain train on the NCCL device plane, world size 1, amp off/fp16/bf16
#   two_ranks_mpi       mpirun -np 2 slidetrain train on the one GPU with the MPI device plane on
#                       CUDA tensors (GradSync, SyncBatchNorm and the fp16 loss scaler interleaved)
#                       against -np 1 with the same global batch: the largest weight difference
#   sbn_vs_torch        SyncBatchNorm on 2 ranks against torch.nn.SyncBatchNorm on the same GPU:
#                       output, gradients and running statistics within 1e-5
#   no_host_sync        the trainer's step (amp off, bf16) under c10's CUDA sync debug mode
#                       "error": no host-device synchronisation in 5 steps
#   resnet50_synthetic  resnet50 224 px, batch 64, the trainer's step vs Python PyTorch, fp32/bf16/fp16
#   resnet50_streamed   the same fed from the slides (PatchStream, pinned batches), fp32/bf16
#   train_vs_ddp        slidetrain train images/s (resnet50 224 px, bf16, SyncBatchNorm on) against
#                       PyTorch DDP (nccl) + SyncBatchNorm (bench/train_step.py --ddp) on the same GPU
#   features            slidetrain features on the CPU, then on the GPU with amp off and bf16
# The build drops libvips (SLIDETRAIN_WITH_VIPS=OFF: its ~30 MiB of libraries do not fit the
# carry); slides are read with OpenSlide and TiffTileReader, as in the full build.
set -uo pipefail  # not -e: a failing step is recorded and the next one runs
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="${SLIDETRAIN_GPU_CARRY:-$ROOT/.gpu_carry}"
LIMIT_MIB=60  # the device tool carries 64 MiB in all (tree + carry)
say() { echo "gpu_check: $*"; }
die() { echo "gpu_check: error: $*" >&2; exit 1; }

usage() { sed -n '2,25p' "$0" >&2; exit 2; }
[[ $# -ge 1 ]] || usage

# ---------------------------------------------------------------------------------------------
# --prepare: .debs and the cohort, on the bookworm build machine.
# ---------------------------------------------------------------------------------------------
# Runtime libraries and the -dev packages whose headers, .so links, .pc and CMake files the build
# needs. -dev packages come without their dependencies (only their own files are needed); the
# runtime libraries come with their closure, minus what any Linux with a CUDA PyTorch has.
DEV_PKGS=(libopenslide-dev libyaml-cpp-dev libopenmpi-dev libgtest-dev libtiff-dev
  libjpeg62-turbo-dev libhdf5-dev)
RUNTIME_PKGS=(libopenslide0 libyaml-cpp0.7 libopenmpi3 openmpi-bin openmpi-common libtiff6
  libjpeg62-turbo libhdf5-103-1 pkgconf pkgconf-bin libpkgconf3)
BASE_RE='^(libc6|libgcc-s1|libstdc\+\+6|gcc-12-base|zlib1g|libcrypt1|debconf|dpkg|perl-base|tar|bash|coreutils|openssh-client|libselinux1|libpcre2-8-0|libzstd1|liblzma5|libbz2-1.0|libssl3|libffi8|libexpat1|libuuid1|libblkid1|libmount1|libsystemd0|libudev1|libcap2|libgcrypt20|libgpg-error0|liblz4-1|libmd0|libtinfo6|libncursesw6|libreadline8|readline-common|libsqlite3-0|sensible-utils|adduser|passwd|libaudit1|libaudit-common|libcap-ng0|libpam0g|libsemanage2|libsemanage-common|libsepol2|libacl1|libattr1|libgmp10|libnettle8|libhogweed6|libgnutls30|libidn2-0|libp11-kit0|libtasn1-6|libkrb5-3|libk5crypto3|libkrb5support0|libcom-err2|libgssapi-krb5-2|libkeyutils1|libedit2|libbsd0|libxxhash0|init-system-helpers|lsb-base|sysvinit-utils|mount|util-linux|login|libdb5.3|fonts-.*|fontconfig-config)$'

prepare() {
  [[ $(id -u) -eq 0 ]] || die "--prepare needs root (apt-get download into .gpu_carry)"
  command -v apt-get >/dev/null || die "--prepare runs on the Debian bookworm build machine"
  [[ -x "$ROOT/build/slidetrain" ]] || die "build/slidetrain missing: run launch/setup.sh first"
  rm -rf "$CARRY.tmp" && mkdir -p "$CARRY.tmp/debs"
  local closure
  closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
              --no-replaces --no-enhances "${RUNTIME_PKGS[@]}" 2>/dev/null | grep '^[a-z0-9]' |
              grep -v ':i386' | sort -u | grep -Ev "$BASE_RE" || true)
  say "downloading $(echo "$closure" | wc -w) runtime + ${#DEV_PKGS[@]} -dev packages"
  (cd "$CARRY.tmp/debs" && apt-get download -qq $closure "${DEV_PKGS[@]}" >/dev/null) ||
    die "apt-get download failed (apt-get update first?)"
  # A small cohort: 4 slides, 224-px patches at level 0 give a few hundred patches.
  say "synthesising the cohort"
  "$ROOT/build/slidetrain" synth -c "$ROOT/configs/demo.yaml" "synth.out_dir=$CARRY.tmp/cohort" \
    synth.num_slides=4 synth.width=3072 synth.height=2304 synth.test_fraction=0.25 synth.val_fraction=0 \
    synth.tumor_fraction=0.5 > /dev/null
  rm -rf "$CARRY" && mv "$CARRY.tmp" "$CARRY"
  check_size
}

check_size() {
  [[ -d "$CARRY/debs" && -f "$CARRY/cohort/cohort.csv" ]] ||
    die "$CARRY is incomplete: run launch/gpu_check.sh --prepare on the build machine"
  local carry tree total
  carry=$(du -sk "$CARRY" | cut -f1)
  # The working tree as the device tool copies it (ignored build outputs stay behind).
  tree=$(du -sk --exclude=.git --exclude='build*' --exclude=.gpu_carry --exclude=demo_out \
           --exclude=runs "$ROOT" | cut -f1)
  total=$(( (carry + ${tree:-0}) / 1024 ))
  say "carry $((carry / 1024)) MiB + tree $(( ${tree:-0} / 1024 )) MiB = ${total} MiB (limit ${LIMIT_MIB} MiB)"
  (( total <= LIMIT_MIB )) || die "the carry is too large for the device tool (${total} MiB)"
}

# ---------------------------------------------------------------------------------------------
# The check itself (GPU machine, or inside the compat root for --dry-run).
# ---------------------------------------------------------------------------------------------
STEPS=(nccl_tests cuda_vs_cpu trainer two_ranks_mpi sbn_vs_torch no_host_sync resnet50_synthetic
  resnet50_streamed train_vs_ddp features)

run_check() {
  local out="$1" dry="$2" only="$3"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  exec > >(tee -a "$out/gpu_check.log") 2>&1
  local start; start=$(date +%s)
  check_size
  work="${SLIDETRAIN_GPU_WORK:-/tmp/slidetrain-gpu-check}"
  prefix="$work/prefix" build="$work/build" res="$work/results"
  mkdir -p "$prefix" "$res"
  py="${PYTHON:-python3}"
  local multiarch
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  lib="$prefix/usr/lib/$multiarch"

  if [[ ! -f "$prefix/.unpacked" ]]; then
    say "unpacking $(ls "$CARRY"/debs/*.deb | wc -l) packages into $prefix"
    local d
    for d in "$CARRY"/debs/*.deb; do
      if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$d" "$prefix"
      else (cd "$work" && ar x "$d" && tar -xf data.tar.* -C "$prefix" && rm -f data.tar.* control.tar.* debian-binary)
      fi || die "cannot unpack $d"
    done
    touch "$prefix/.unpacked"
  fi
  [[ -f "$lib/libopenslide.so" ]] || die "carried OpenSlide missing from $lib"

  # Toolchain facts: libtorch of this machine's PyTorch, its NCCL and cuDNN wheels, the CUDA toolkit.
  local torch_prefix nccl_home cuda_root
  torch_prefix=$("$py" -c 'import os, torch; p = torch.utils.cmake_prefix_path; print(p if os.path.isdir(os.path.join(p, "Torch")) else "")')
  if [[ -z "$torch_prefix" && -d "/usr/lib/$multiarch/cmake/Torch" ]]; then
    torch_prefix="/usr/lib/$multiarch/cmake"  # Debian's python3-torch keeps TorchConfig here
  fi
  [[ -n "$torch_prefix" ]] || die "no TorchConfig.cmake next to $py's torch"
  # The carried C++ libraries (yaml-cpp, GoogleTest) use the C++11 ABI; a libtorch without it
  # would link but fail at run time on every std::string crossing.
  local abi
  abi=$("$py" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))') || die "cannot import torch with $py"
  [[ "$abi" == 1 ]] || die "$py's torch is built with _GLIBCXX_USE_CXX11_ABI=0; the carried libraries use the C++11 ABI (=1)"
  nccl_home=$("$py" -c 'import os, nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null || true)
  local nccl_inc nccl_lib
  if [[ -n "$nccl_home" && -f "$nccl_home/include/nccl.h" ]]; then
    nccl_inc="$nccl_home/include"
    nccl_lib=$(ls "$nccl_home"/lib/libnccl.so* | head -1)
  else
    nccl_inc=/usr/include
    nccl_lib=$(ls /usr/lib/"$multiarch"/libnccl.so* 2>/dev/null | head -1 || true)
  fi
  [[ -f "$nccl_inc/nccl.h" && -n "$nccl_lib" ]] || die "NCCL not found (the nvidia-nccl wheel or libnccl-dev)"
  # cuDNN: the wheel ships libcudnn.so.9 only; libtorch's CMake config is told where it is.
  local cudnn_home cudnn_args=()
  cudnn_home=$("$py" -c 'import nvidia.cudnn as c; print(list(c.__path__)[0])' 2>/dev/null || true)
  if [[ -n "$cudnn_home" && -f "$cudnn_home/lib/libcudnn.so.9" ]]; then
    cudnn_args=(-DCUDNN_INCLUDE_PATH="$cudnn_home/include" -DCUDNN_LIBRARY_PATH="$cudnn_home/lib/libcudnn.so.9")
    say "cuDNN $cudnn_home/lib/libcudnn.so.9"
  fi
  # Every nvidia-* wheel's lib folder (cudnn, cu13, nccl, cublas, ...) on the runtime path.
  local nvlibs
  nvlibs=$("$py" -c 'import os, nvidia
print(":".join(sorted(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, "lib")))))' 2>/dev/null || true)
  cuda_root=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  say "torch $("$py" -c 'import torch; print(torch.__version__, torch.version.cuda)') at $torch_prefix"
  say "NCCL $nccl_lib; CUDA toolkit $cuda_root"

  # Runtime: carried libraries and OpenMPI's plugins (OPAL_PREFIX relocates OpenMPI's install
  # prefix; PMIx, a library of its own, is pointed at its carried plugin folder).
  local torch_lib
  torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  LDPATH="$lib:$lib/openmpi/lib:$(dirname "$nccl_lib"):$torch_lib${nvlibs:+:$nvlibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  PMIX_PLUGINS=$(ls -d "$lib"/pmix*/lib/pmix 2>/dev/null | head -1 || true)
  # The carried launcher itself: a .deb unpacked without dpkg has no update-alternatives link
  # usr/bin/mpirun, and a machine's own mpirun belongs to another OpenMPI.
  MPIRUN="$prefix/usr/bin/orterun"
  [[ -x "$MPIRUN" ]] || MPIRUN="$prefix/usr/bin/mpirun.openmpi"

  # An MPI smoke test before anything is built on it.
  if run "$MPIRUN" -np 1 true > "$res/mpi_smoke.log" 2>&1; then
    say "MPI smoke test (mpirun -np 1 true): ok"
  else
    cat "$res/mpi_smoke.log"
    say "MPI smoke test failed: the two-rank steps will fail (the others run)"
  fi

  # pkg-config: the carried pkgconf when the machine has none; carried .pc files only, their
  # /usr paths rebased onto the prefix.
  local pkgconf
  pkgconf=$(command -v pkg-config || true)
  if [[ -z "$pkgconf" ]]; then
    pkgconf="$work/pkg-config"
    printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$lib" "$prefix/usr/bin/pkgconf" > "$pkgconf"
    chmod +x "$pkgconf"
  fi
  export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$prefix/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$prefix"

  bin="$build/slidetrain" bench="$build/bench/bench_gpu_step" dtests="$build/tests/dist_tests"
  if [[ -x "$bin" && -x "$bench" && -x "$dtests" && -f "$build/CMakeCache.txt" ]]; then
    # A rerun: ninja rebuilds only what changed since (nothing when the tree is the same).
    cmake --build "$build" -j "$(nproc)" --target slidetrain dist_tests bench_gpu_step > "$res/build.log" 2>&1 ||
      { tail -40 "$res/build.log"; record build 1 "$start" "$res/build.log" "$out"; die "build failed"; }
    if grep -q "ninja: no work to do" "$res/build.log"; then
      say "the binaries exist and are up to date: nothing rebuilt"
    else
      say "the binaries exist: rebuilt what changed in $(( $(date +%s) - start )) s"
    fi
  else
    say "configuring (SLIDETRAIN_WITH_VIPS=OFF, SLIDETRAIN_WITH_NCCL=ON)"
    rm -f "$build/CMakeCache.txt"
    cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DSLIDETRAIN_WITH_VIPS=OFF -DSLIDETRAIN_WITH_NCCL=ON -DSLIDETRAIN_CUDA_ROOT="$cuda_root" \
      -DNCCL_INCLUDE_DIR="$nccl_inc" -DNCCL_LIBRARY="$nccl_lib" "${cudnn_args[@]}" \
      -DCMAKE_PREFIX_PATH="$prefix/usr;$lib/cmake;$torch_prefix" -DPKG_CONFIG_EXECUTABLE="$pkgconf" \
      -DMPI_CXX_SKIP_MPICXX=ON -DMPI_CXX_COMPILER_INCLUDE_DIRS="$lib/openmpi/include" \
      -DMPI_CXX_LIB_NAMES=mpi -DMPI_mpi_LIBRARY="$lib/openmpi/lib/libmpi.so" \
      -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$lib:$lib/openmpi/lib" \
      -DTIFF_INCLUDE_DIR="$prefix/usr/include/$multiarch" -DTIFF_LIBRARY="$lib/libtiff.so" \
      -DJPEG_INCLUDE_DIR="$prefix/usr/include/$multiarch" -DJPEG_LIBRARY="$lib/libjpeg.so" \
      -DSLIDETRAIN_SHARED_DATA="$CARRY" > "$res/cmake.log" 2>&1 ||
      { cat "$res/cmake.log"; record build 1 "$start" "$res/cmake.log" "$out"; die "cmake failed"; }
    # The dependencies must come from the carry, not from whatever the machine has.
    local c
    for c in OPENSLIDE_INCLUDEDIR yaml-cpp_DIR GTest_DIR MPI_mpi_LIBRARY; do
      grep -q "^$c[:=].*$prefix" "$build/CMakeCache.txt" ||
        die "$c does not point into the carried prefix: $(grep "^$c[:=]" "$build/CMakeCache.txt" || echo unset)"
    done
    say "building ($(nproc) jobs)"
    cmake --build "$build" -j "$(nproc)" --target slidetrain dist_tests bench_gpu_step > "$res/build.log" 2>&1 ||
      { tail -40 "$res/build.log"; record build 1 "$start" "$res/build.log" "$out"; die "build failed"; }
    say "built in $(( $(date +%s) - start )) s"
    record build 0 "$start" "$res/build.log" "$out"
  fi
  # Every shared library resolves (a carried library whose dependency BASE_RE wrongly assumed).
  local missing
  missing=$(run ldd "$bin" "$bench" "$dtests" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
  [[ -z "$missing" ]] || die "not found at run time: ${missing}(carry their packages: RUNTIME_PKGS, BASE_RE)"

  DEVICE=cuda SIZE=224 BATCH=64 NSTEPS=20 EPOCHS=2 CMPSTEPS=50 BACKEND=nccl R50=resnet50 STRIDE=56 MAXSTEPS=30
  if [[ $dry == 1 ]]; then  # the same commands, CPU-sized
    DEVICE=cpu SIZE=64 BATCH=4 NSTEPS=3 EPOCHS=2 CMPSTEPS=5 BACKEND=auto R50=resnet50 STRIDE=32 MAXSTEPS=12
  fi
  COHORT="$CARRY/cohort/cohort.csv"
  DRY=$dry

  # Which steps run: all, a list, or those not ok in the latest record.
  local selected=() name
  if [[ -z "$only" ]]; then
    selected=("${STEPS[@]}")
  elif [[ "$only" == failed ]]; then
    local passed
    passed=$("$py" - "$out/gpu_check.jsonl" <<'PY'
import json, os, sys
last = {}
if os.path.exists(sys.argv[1]):
    for line in open(sys.argv[1]):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        last[r["step"]] = r["ok"]
print(" ".join(k for k, ok in last.items() if ok))
PY
)
    for name in "${STEPS[@]}"; do [[ " $passed " == *" $name "* ]] || selected+=("$name"); done
    say "steps not ok before: ${selected[*]:-none}"
  else
    IFS=, read -r -a selected <<< "$only"
    for name in "${selected[@]}"; do
      [[ " ${STEPS[*]} " == *" $name "* ]] || die "--steps: unknown step '$name' (steps: ${STEPS[*]})"
    done
  fi

  local failed=0
  for name in "${selected[@]}"; do run_step "$name" "$out" || failed=1; done
  summary "$out" "$dry" "$(( $(date +%s) - start ))"
  say "done in $(( $(date +%s) - start )) s: $out/gpu_check.jsonl, $out/gpu_check.json"
  return $failed
}

# The carried libraries, OpenMPI relocated to the prefix, PMIx's plugins, root allowed to mpirun.
run() {
  env LD_LIBRARY_PATH="$LDPATH" OPAL_PREFIX="$prefix/usr" PATH="$prefix/usr/bin:$PATH" \
    ${PMIX_PLUGINS:+PMIX_MCA_mca_base_component_path="$PMIX_PLUGINS"} \
    OMPI_MCA_plm=isolated PMIX_MCA_pcompress_base_silence_warning=1 \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$@"
}
mpirun2() { run "$MPIRUN" -np 2 --oversubscribe --bind-to none "$@"; }

# GPU busy fraction: nvidia-smi sampled every 100 ms around a command (figure NAME_gpu_busy).
busy() {  # busy NAME CMD...
  local name="$1"; shift
  local pid="" rc
  if [[ $DRY == 0 ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 > "$res/$name.util" 2>/dev/null &
    pid=$!
  fi
  "$@"
  rc=$?
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    # to stderr (the step's log): stdout may be a command substitution parsed by `figures`
    awk -v n="$name" '/^[0-9.]+$/ {s += $1; k++} END {if (k) printf "figure %s_gpu_busy=%.3f\n", n, s / k / 100}' "$res/$name.util" >&2
  fi
  return $rc
}

# The last key=value line of a command's output, each pair prefixed with PREFIX_: a step's figures.
figures() {  # figures PREFIX < output
  awk -v p="$1" '/=/ {line = $0} END {n = split(line, t, " "); for (i = 1; i <= n; i++) if (t[i] ~ /=/) printf "figure %s_%s\n", p, t[i]}'
}

# ----- the steps: each fails (non-zero) when its check fails; "figure k=v" lines are recorded ----
step_nccl_tests() {
  local rc=0
  run "$dtests" --gtest_filter='NcclComm.*:MakeComm.*' || rc=$?
  echo "figure gtest=\"$(grep -E '^\[  (PASSED|SKIPPED|FAILED)  \]' "$LOG" | tr -s ' ' | tr '\n' ';' | tr -d '"' || true)\""
  return $rc
}

step_cuda_vs_cpu() {
  local o
  o=$(run "$bench" compare --steps "$CMPSTEPS" --device "$DEVICE" --backend "$BACKEND") || { echo "$o"; return 1; }
  echo "$o"
  echo "$o" | figures compare
}

step_trainer() {
  local amp
  for amp in off fp16 bf16; do
    rm -rf "$work/run_$amp"  # a rerun starts over (metrics.jsonl appends)
    run "$bin" train -c "$ROOT/configs/demo.yaml" "cohort=$COHORT" "cache_dir=$work/cache" \
      "run_dir=$work/run_$amp" train.resume=none "train.backend=$BACKEND" "train.device=$DEVICE" \
      "train.amp=$amp" "train.epochs=$EPOCHS" train.batch_size=64 train.progress=none predict.viewer=false \
      > "$res/train_$amp.out" 2>&1 || { cat "$res/train_$amp.out"; return 1; }
    grep -E "^training:|^device |^epoch " "$res/train_$amp.out" | sed "s/^/  [$amp] /" || true
    cp "$work/run_$amp/metrics.jsonl" "$res/metrics_$amp.jsonl"
    "$py" - "$res/metrics_$amp.jsonl" "$amp" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"epoch"' in l]
print("figure trainer_loss_%s=%s" % (sys.argv[2], ",".join("%.4f" % r["loss"] for r in rows)))
print("figure trainer_gpu_busy_pct_%s=%s" % (sys.argv[2], rows[-1].get("gpu_busy_pct")))
PY
  done
}

step_two_ranks_mpi() {
  # The same global batch (32) on 2 ranks and on 1, fp16 with its loss scaler, SyncBatchNorm on,
  # gradients, statistics and the inf flag through MPI on CUDA tensors (staged through the host).
  local np
  for np in 2 1; do
    local launch=(mpirun2)
    [[ $np == 1 ]] && launch=(run "$MPIRUN" -np 1 --bind-to none)
    rm -rf "$work/run_np$np"
    "${launch[@]}" "$bin" train -c "$ROOT/configs/demo.yaml" "cohort=$COHORT" "cache_dir=$work/cache" \
      "run_dir=$work/run_np$np" train.resume=none train.backend=mpi "train.device=$DEVICE" train.amp=fp16 \
      train.sync_batchnorm=true train.batch_size=32 train.max_steps=12 train.progress=none predict.viewer=false \
      model.dropout=0 > "$res/np$np.out" 2>&1 || { cat "$res/np$np.out"; return 1; }
    grep -E "^training:|^device |^epoch " "$res/np$np.out" | sed "s/^/  [np $np] /" || true
  done
  "$py" - "$work/run_np2/weights.pt" "$work/run_np1/weights.pt" <<'PY'
import sys, torch
a, b = (torch.load(p, map_location="cpu") for p in sys.argv[1:3])
a, b = (x.get("state_dict", x) if isinstance(x, dict) else x for x in (a, b))
d = max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())
print("figure two_ranks_max_weight_diff_vs_one=%.3g" % d)
# fp16 autocast on CUDA, 12 steps: rounding differs between one and two ranks' partial sums.
sys.exit(0 if d < 5e-2 else 1)
PY
}

step_sbn_vs_torch() {
  rm -rf "$res/sbn" && mkdir -p "$res/sbn"
  "$py" "$ROOT/bench/sbn_reference.py" "$res/sbn" "$DEVICE" || return 1
  local o
  o=$(mpirun2 "$bench" sbn --dir "$res/sbn" --device "$DEVICE" --backend mpi) || { echo "$o"; return 1; }
  echo "$o"
  echo "$o" | figures sbn
  local worst
  worst=$(echo "$o" | sed -n 's/.*max_abs_diff=\([^ ]*\).*/\1/p' | tail -1)
  awk -v w="$worst" 'BEGIN { exit !(w != "" && w + 0 <= 1e-5) }' || { echo "SyncBatchNorm differs from torch's by $worst (> 1e-5)"; return 1; }
}

step_no_host_sync() {
  local amp o rc=0
  for amp in off bf16; do
    o=$(run "$bench" nosync --device "$DEVICE" --amp "$amp" --backend "$BACKEND") || rc=1
    echo "$o"
    echo "$o" | figures "nosync_$amp"
  done
  return $rc
}

step_resnet50_synthetic() {
  local threads amp c p
  threads=$(( $(nproc) > 8 ? 8 : $(nproc) ))
  for amp in off bf16 fp16; do
    c=$(busy "cpp_$amp" run "$bench" synthetic --model "$R50" --size "$SIZE" --batch "$BATCH" \
      --steps "$NSTEPS" --amp "$amp" --device "$DEVICE" --threads "$threads" --backend "$BACKEND") || { echo "$c"; return 1; }
    p=$(busy "py_$amp" "$py" "$ROOT/bench/train_step.py" --model "$R50" --size "$SIZE" --batch "$BATCH" \
      --steps "$NSTEPS" --warmup 3 --amp "$amp" --device "$DEVICE" --threads "$threads" --uint8) || { echo "$p"; return 1; }
    echo "$c"; echo "$p"
    echo "$c" | figures "slidetrain_$amp"
    echo "$p" | figures "pytorch_$amp"
  done
  # SyncBatchNorm off, bf16: what SyncBatchNorm costs on the GPU at world size 1.
  c=$(busy cpp_bf16_nosbn run "$bench" synthetic --model "$R50" --size "$SIZE" --batch "$BATCH" --steps "$NSTEPS" \
    --amp bf16 --sync off --device "$DEVICE" --threads "$threads" --backend "$BACKEND") || { echo "$c"; return 1; }
  echo "$c"
  echo "$c" | figures "slidetrain_bf16_sync_batchnorm_off"
}

step_resnet50_streamed() {
  local threads amp o
  threads=$(( $(nproc) > 8 ? 8 : $(nproc) ))
  for amp in off bf16; do
    o=$(busy "stream_$amp" run "$bench" stream --cohort "$COHORT" --cache "$work/cache_stream" \
      --model "$R50" --size "$SIZE" --batch "$BATCH" --steps "$NSTEPS" --amp "$amp" \
      --device "$DEVICE" --threads "$threads" --workers "$(nproc)" --backend "$BACKEND") || { echo "$o"; return 1; }
    echo "$o"
    echo "$o" | figures "streamed_$amp"
  done
}

step_train_vs_ddp() {
  # slidetrain train's steady state (steps 5..MAXSTEPS on rank 0, timed by its progress lines) on
  # an overlapping grid of the carried slides (tiling.stride), against DDP + SyncBatchNorm on one
  # batch already on the device.
  local model="$R50" size="$SIZE" threads
  threads=$(( $(nproc) > 8 ? 8 : $(nproc) ))
  rm -rf "$work/run_ddp"
  run "$bin" train -c "$ROOT/configs/demo.yaml" "cohort=$COHORT" "cache_dir=$work/cache_ddp" \
    "run_dir=$work/run_ddp" train.resume=none "train.backend=$BACKEND" "train.device=$DEVICE" \
    train.amp=bf16 train.sync_batchnorm=true "model.name=$model" tiling.level=0 "tiling.patch_size=$size" \
    "tiling.stride=$STRIDE" tiling.min_tissue=0.3 "train.batch_size=$BATCH" "train.max_steps=$MAXSTEPS" \
    train.log_every=5 train.progress=lines predict.viewer=false 2>&1 |
    "$py" -u -c 'import sys, time
for line in sys.stdin: sys.stdout.write("%.6f %s" % (time.perf_counter(), line))' > "$res/train_ddp.out" ||
    { cat "$res/train_ddp.out"; return 1; }
  grep -E "training:|epoch " "$res/train_ddp.out" | tail -4 || true
  local st
  # Progress lines come every 5 steps of the (single) epoch: (lines - 1) x 5 steps between the
  # first line (step 5) and the last.
  st=$(awk -v n="$BATCH" '/ epoch [0-9]+\/[0-9]+ / {
      for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/ && $(i-1) ~ /\]$/) { k++; t[k] = $1 } }
    END { if (k < 2) exit 1; printf "%.2f", (k - 1) * 5 * n / (t[k] - t[1]) }' "$res/train_ddp.out") ||
    { echo "no steady state in $res/train_ddp.out"; return 1; }
  local p
  p=$(busy ddp "$py" "$ROOT/bench/train_step.py" --model "$model" --size "$size" --batch "$BATCH" \
    --steps "$NSTEPS" --warmup 3 --amp bf16 --device "$DEVICE" --threads "$threads" --uint8 --sync-batchnorm \
    --ddp "$([[ $DRY == 1 ]] && echo gloo || echo nccl)") || { echo "$p"; return 1; }
  echo "$p"
  local q
  q=$(echo "$p" | sed -n 's/.*images_per_s=\([^ ]*\).*/\1/p' | tail -1)
  echo "figure slidetrain_train_images_per_s=$st"
  echo "figure pytorch_ddp_syncbn_images_per_s=$q"
  echo "figure ratio=$(awk -v a="$st" -v b="$q" 'BEGIN { printf "%.3f", a / b }')"
}

step_features() {
  local fa
  for fa in cpu off bf16; do
    local fdev="$DEVICE" famp="$fa" fbackend="$BACKEND"
    [[ $fa == cpu ]] && fdev=cpu famp=off fbackend=auto
    [[ -f "$work/run_off/weights.pt" ]] || { echo "features needs the trainer step's weights ($work/run_off)"; return 1; }
    rm -rf "$work/features_$fa"
    run "$bin" features -c "$ROOT/configs/demo.yaml" "cohort=$COHORT" "cache_dir=$work/cache" \
      "run_dir=$work/run_off" "features.out_dir=$work/features_$fa" "model.pretrained=$work/run_off/weights.pt" \
      "train.device=$fdev" "train.backend=$fbackend" "train.amp=$famp" \
      > "$res/features_$fa.out" 2>&1 || { cat "$res/features_$fa.out"; return 1; }
    grep "^features: wrote" "$res/features_$fa.out" | sed "s/^/  [$fa] /" || true
  done
  "$py" - "$work" "$res" <<'PY'
import os, re, sys
import h5py, numpy as np
work, res = sys.argv[1:3]
def features(name):
    d = os.path.join(work, "features_" + name)
    return {f: h5py.File(os.path.join(d, f), "r")["features"][()] for f in sorted(os.listdir(d)) if f.endswith(".h5")}
def rate(name):
    m = re.search(r"\(([0-9.]+) patches/s", open(os.path.join(res, "features_%s.out" % name)).read())
    return m and float(m.group(1))
cpu = features("cpu")
print("figure features_cpu_patches_per_s=%s" % rate("cpu"))
for name in ("off", "bf16"):
    dev = features(name)
    assert dev.keys() == cpu.keys(), (name, dev.keys(), cpu.keys())
    print("figure features_%s_patches_per_s=%s" % (name, rate(name)))
    print("figure features_%s_max_abs_diff_vs_cpu=%.3g" % (name, max(np.abs(dev[k].astype(np.float64) - cpu[k]).max() for k in cpu)))
PY
}

# Appends a step's line to OUT/gpu_check.jsonl: ok, rc, seconds since T0, the "figure k=v" pairs
# of its log, and the end of the log when it failed.
record() {  # record NAME RC T0 LOG OUT
  "$py" - "$1" "$2" "$3" "$(date +%s.%N)" "$4" "$5/gpu_check.jsonl" <<'PY'
import json, shlex, sys
name, rc, t0, t1, log, jsonl = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
lines = open(log, errors="replace").read().splitlines()
figures = {}
for line in lines:
    if line.startswith("figure "):
        for tok in shlex.split(line[len("figure "):]):
            if "=" in tok:
                k, v = tok.split("=", 1)
                try:
                    v = float(v)
                except ValueError:
                    pass
                figures[k] = v
rec = {"step": name, "ok": rc == 0, "rc": rc, "seconds": round(t1 - t0, 1), "figures": figures}
if rc != 0:
    rec["error"] = [l for l in lines if not l.startswith("figure ")][-15:]
with open(jsonl, "a") as f:
    f.write(json.dumps(rec) + "\n")
PY
}

# Runs step NAME in a subshell (its own errexit), logs it, and appends its line to the JSONL.
run_step() {  # run_step NAME OUT
  local name="$1" out="$2" t0 rc
  LOG="$res/$name.log"
  say "step $name"
  t0=$(date +%s.%N)
  (
    set -e -o pipefail
    if [[ "${SLIDETRAIN_GPU_CHECK_FAIL:-}" == "$name" ]]; then
      echo "failing on purpose (SLIDETRAIN_GPU_CHECK_FAIL=$name)"
      exit 97
    fi
    "step_$name"
  ) > "$LOG" 2>&1
  rc=$?
  grep -v '^figure ' "$LOG" | tail -n 12 | sed 's/^/  /'
  record "$name" "$rc" "$t0" "$LOG" "$out"
  if [[ $rc == 0 ]]; then say "step $name: ok"; else say "step $name: FAILED (rc $rc; $LOG)"; fi
  return $rc
}

# The latest record of every step: gpu_check.json and a table.
summary() {  # summary OUT DRY SECONDS
  "$py" - "$1/gpu_check.jsonl" "$1/gpu_check.json" "$2" "$3" "${STEPS[@]}" <<'PY'
import json, sys
jsonl, out, dry, seconds, order = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4]), sys.argv[5:]
last = {}
for line in open(jsonl):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    last[r["step"]] = r
try:
    import torch
    info = {"torch": torch.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
except Exception as e:  # the check records what it can
    info = {"torch": "unavailable: %s" % e}
json.dump(dict(info, dry_run=dry, seconds_this_run=seconds, steps=last), open(out, "w"), indent=2)
print("\n%-20s %-6s %8s  %s" % ("step", "ok", "seconds", "figures"))
for name in order:
    r = last.get(name)
    if r is None:
        print("%-20s %-6s %8s" % (name, "-", "-"))
        continue
    figs = " ".join("%s=%s" % (k, ("%.4g" % v) if isinstance(v, float) else v) for k, v in r["figures"].items())
    print("%-20s %-6s %8.1f  %s" % (name, "yes" if r["ok"] else "NO", r["seconds"], figs[:160]))
PY
}

# ---------------------------------------------------------------------------------------------
# --dry-run: the same, inside the CUDA compat root, on the CPU.
# ---------------------------------------------------------------------------------------------
dry_run() {  # dry_run OUT STEPS
  local out="$1"
  [[ $(id -u) -eq 0 ]] || die "--dry-run needs root (chroot into the compat root)"
  local cache="${SLIDETRAIN_COMPAT_CACHE:-/var/cache/slidetrain-compat}" r
  r="$cache/trixie-cuda"
  [[ -f "$r/.slidetrain-packages" ]] || die "no CUDA compat root at $r: run launch/compat.sh --cuda first"
  check_size
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  MOUNTS=()
  trap 'for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done' EXIT
  local m
  for m in proc sys dev dev/pts dev/shm; do mount --bind "/$m" "$r/$m"; MOUNTS+=("$r/$m"); done
  mkdir -p "$r/gpucheck/src" "$r/gpucheck/out"
  mount --bind "$ROOT" "$r/gpucheck/src"; MOUNTS+=("$r/gpucheck/src")
  mount --bind "$out" "$r/gpucheck/out"; MOUNTS+=("$r/gpucheck/out")
  source "$ROOT/launch/onednn_guard.sh"
  local onednn
  onednn="$(onednn_guard "$r")" || die "oneDNN fails in $r (above)"
  [[ -z "$onednn" ]] || say "this CPU makes trixie's oneDNN 3.6 divide by zero (launch/onednn_guard.sh): $onednn"
  say "dry run inside $r (CPU, small sizes)"
  chroot "$r" env -u LD_LIBRARY_PATH SLIDETRAIN_GPU_CARRY=/gpucheck/src/.gpu_carry \
    ${SLIDETRAIN_GPU_CHECK_FAIL:+SLIDETRAIN_GPU_CHECK_FAIL="$SLIDETRAIN_GPU_CHECK_FAIL"} $onednn \
    bash /gpucheck/src/launch/gpu_check.sh --inside-dry-run "$2" /gpucheck/out
}

ONLY=""
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --steps) [[ $# -ge 2 ]] || usage; ONLY="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]}"
[[ $# -ge 1 ]] || usage
case "$1" in
  --prepare) set -e; prepare ;;
  --dry-run) [[ $# -eq 2 ]] || usage; set -e; dry_run "$2" "$ONLY" ;;
  --inside-dry-run) [[ $# -eq 3 ]] || usage; run_check "$3" 1 "$2" ;;
  -*) usage ;;
  *) [[ $# -eq 1 ]] || usage; run_check "$1" 0 "$ONLY" ;;
esac
