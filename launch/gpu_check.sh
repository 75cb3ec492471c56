#!/usr/bin/env bash
# The prepared GPU check: builds slidetrain against the libtorch of a machine's own CUDA PyTorch
# and measures the GPU path, writing OUT_DIR/gpu_check.json and OUT_DIR/gpu_check.log.
#
#   launch/gpu_check.sh --prepare          On the Debian bookworm build machine (root, apt): fills
#                                          .gpu_carry/ (git-ignored, < 64 MiB with the tree) with
#                                          the .deb files of OpenSlide, yaml-cpp, OpenMPI, libtiff,
#                                          libjpeg, GoogleTest and pkgconf and their libraries, and
#                                          a small synthetic cohort made by build/slidetrain synth.
#   launch/gpu_check.sh OUT_DIR            On the GPU machine (one NVIDIA GPU, no network, python3
#                                          with a CUDA PyTorch and its NCCL wheel, nvcc, CMake,
#                                          ninja; no Debian -dev packages), with .gpu_carry carried
#                                          beside the tree. Under 5 minutes in all.
#   launch/gpu_check.sh --dry-run OUT_DIR  Here, as root: the same script inside the CUDA compat root
#                                          (launch/compat.sh --cuda), on the CPU, with small sizes.
#
# What it records (docs/benchmarks.md, "GPU check"):
#   1. NcclComm's GPU tests (dist_tests NcclComm.*);
#   2. CUDA vs CPU: max |weight difference| after 50 identical small_cnn SGD steps;
#   3. the trainer on the NCCL device plane at world size 1 (train.backend=nccl) on the carried
#      cohort, with train.amp off, fp16 and bf16: the loss curves (metrics.jsonl per epoch);
#   4. resnet50 at 224 px: training images/s in fp32 and AMP (bf16, fp16), on synthetic tensors and
#      on patches streamed from the slides, beside the same model in that machine's Python
#      PyTorch (bench/train_step.py), with the GPU busy fraction sampled by nvidia-smi.
# The build drops libvips (SLIDETRAIN_WITH_VIPS=OFF: its ~30 MiB of libraries do not fit the
# carry); slides are read with OpenSlide and TiffTileReader, as in the full build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="${SLIDETRAIN_GPU_CARRY:-$ROOT/.gpu_carry}"
LIMIT_MIB=60  # the device tool carries 64 MiB in all (tree + carry)
say() { echo "gpu_check: $*"; }
die() { echo "gpu_check: error: $*" >&2; exit 1; }

usage() { sed -n '2,16p' "$0" >&2; exit 2; }
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
run_check() {
  local out="$1" dry="$2"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  exec > >(tee "$out/gpu_check.log") 2>&1
  local start; start=$(date +%s)
  check_size
  local work="${SLIDETRAIN_GPU_WORK:-/tmp/slidetrain-gpu-check}"
  local prefix="$work/prefix" build="$work/build" res="$work/results"
  rm -rf "$prefix" "$res" "$build/CMakeCache.txt" && mkdir -p "$prefix" "$res"
  local py="${PYTHON:-python3}" multiarch
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

  say "unpacking $(ls "$CARRY"/debs/*.deb | wc -l) packages into $prefix"
  for d in "$CARRY"/debs/*.deb; do
    if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$d" "$prefix"
    else (cd "$work" && ar x "$d" && tar -xf data.tar.* -C "$prefix" && rm -f data.tar.* control.tar.* debian-binary)
    fi
  done
  local lib="$prefix/usr/lib/$multiarch"
  [[ -f "$lib/libopenslide.so" ]] || die "carried OpenSlide missing from $lib"

  # Toolchain facts: libtorch of this machine's PyTorch, its NCCL, the CUDA toolkit.
  local torch_prefix nccl_home cuda_root
  torch_prefix=$("$py" -c 'import os, torch; p = torch.utils.cmake_prefix_path; print(p if os.path.isdir(os.path.join(p, "Torch")) else "")')
  if [[ -z "$torch_prefix" && -d "/usr/lib/$multiarch/cmake/Torch" ]]; then
    torch_prefix="/usr/lib/$multiarch/cmake"  # Debian's python3-torch keeps TorchConfig here
  fi
  [[ -n "$torch_prefix" ]] || die "no TorchConfig.cmake next to $py's torch"
  nccl_home=$("$py" -c 'import os, nvidia.nccl as n; print(os.path.dirname(n.__file__))' 2>/dev/null || true)
  local nccl_inc nccl_lib
  if [[ -n "$nccl_home" && -f "$nccl_home/include/nccl.h" ]]; then
    nccl_inc="$nccl_home/include"
    nccl_lib=$(ls "$nccl_home"/lib/libnccl.so* | head -1)
  else
    nccl_inc=/usr/include
    nccl_lib=$(ls /usr/lib/"$multiarch"/libnccl.so* 2>/dev/null | head -1 || true)
  fi
  [[ -f "$nccl_inc/nccl.h" && -n "$nccl_lib" ]] || die "NCCL not found (the nvidia-nccl wheel or libnccl-dev)"
  cuda_root=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  say "torch $("$py" -c 'import torch; print(torch.__version__, torch.version.cuda)') at $torch_prefix"
  say "NCCL $nccl_lib; CUDA toolkit $cuda_root"

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

  say "configuring (SLIDETRAIN_WITH_VIPS=OFF, SLIDETRAIN_WITH_NCCL=ON)"
  cmake -S "$ROOT" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DSLIDETRAIN_WITH_VIPS=OFF -DSLIDETRAIN_WITH_NCCL=ON -DSLIDETRAIN_CUDA_ROOT="$cuda_root" \
    -DNCCL_INCLUDE_DIR="$nccl_inc" -DNCCL_LIBRARY="$nccl_lib" \
    -DCMAKE_PREFIX_PATH="$prefix/usr;$lib/cmake;$torch_prefix" -DPKG_CONFIG_EXECUTABLE="$pkgconf" \
    -DMPI_CXX_SKIP_MPICXX=ON -DMPI_CXX_COMPILER_INCLUDE_DIRS="$lib/openmpi/include" \
    -DMPI_CXX_LIB_NAMES=mpi -DMPI_mpi_LIBRARY="$lib/openmpi/lib/libmpi.so" \
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$lib:$lib/openmpi/lib" \
    -DTIFF_INCLUDE_DIR="$prefix/usr/include/$multiarch" -DTIFF_LIBRARY="$lib/libtiff.so" \
    -DJPEG_INCLUDE_DIR="$prefix/usr/include/$multiarch" -DJPEG_LIBRARY="$lib/libjpeg.so" \
    -DSLIDETRAIN_SHARED_DATA="$CARRY" > "$res/cmake.log" 2>&1 || { cat "$res/cmake.log"; die "cmake failed"; }
  # The dependencies must come from the carry, not from whatever the machine has.
  local c
  for c in OPENSLIDE_INCLUDEDIR yaml-cpp_DIR GTest_DIR MPI_mpi_LIBRARY; do
    grep -q "^$c[:=].*$prefix" "$build/CMakeCache.txt" ||
      die "$c does not point into the carried prefix: $(grep "^$c[:=]" "$build/CMakeCache.txt" || echo unset)"
  done
  say "building ($(nproc) jobs)"
  cmake --build "$build" -j "$(nproc)" --target slidetrain dist_tests bench_gpu_step > "$res/build.log" 2>&1 ||
    { tail -40 "$res/build.log"; die "build failed"; }
  say "built in $(( $(date +%s) - start )) s"

  # Runtime: carried libraries and OpenMPI's plugins (OPAL_PREFIX relocates its install prefix).
  local torch_lib
  torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  local ld="$lib:$lib/openmpi/lib:$(dirname "$nccl_lib"):$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  run() { env LD_LIBRARY_PATH="$ld" OPAL_PREFIX="$prefix/usr" PATH="$prefix/usr/bin:$PATH" \
            OMPI_MCA_plm=isolated PMIX_MCA_pcompress_base_silence_warning=1 \
            OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$@"; }
  local bin="$build/slidetrain" bench="$build/bench/bench_gpu_step"
  # Every shared library resolves (a carried library whose dependency BASE_RE wrongly assumed).
  local missing
  missing=$(run ldd "$bin" "$bench" "$build/tests/dist_tests" | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
  [[ -z "$missing" ]] || die "not found at run time: ${missing}(carry their packages: RUNTIME_PKGS, BASE_RE)"
  # GPU busy fraction: nvidia-smi sampled every 100 ms around a command.
  busy() {  # busy NAME CMD...
    local name="$1"; shift
    local pid=""
    if [[ $dry == 0 ]] && command -v nvidia-smi >/dev/null; then
      nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 > "$res/$name.util" 2>/dev/null &
      pid=$!
    fi
    "$@" | tee "$res/$name.out"
    [[ -z "$pid" ]] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  }

  local device=cuda size=224 batch=64 steps=20 ssize=224 epochs=4 cmpsteps=50 backend=nccl
  if [[ $dry == 1 ]]; then  # same commands, CPU-sized
    device=cpu size=64 batch=4 steps=3 ssize=64 epochs=2 cmpsteps=5 backend=auto
  fi

  say "1/5 NcclComm GPU tests"
  run "$build/tests/dist_tests" --gtest_filter='NcclComm.*:MakeComm.*' > "$res/nccl_tests.out" 2>&1 ||
    { cat "$res/nccl_tests.out"; die "NcclComm tests failed"; }
  tail -3 "$res/nccl_tests.out"

  say "2/5 CUDA vs CPU, $cmpsteps small_cnn steps"
  run "$bench" compare --steps "$cmpsteps" --device "$device" | tee "$res/compare.out"

  say "3/5 the trainer on the $backend device plane, train.amp off / fp16 / bf16"
  local cohort="$CARRY/cohort/cohort.csv"
  for amp in off fp16 bf16; do
    run "$bin" train -c "$ROOT/configs/demo.yaml" "cohort=$cohort" "cache_dir=$work/cache" \
      "run_dir=$work/run_$amp" train.resume=none "train.backend=$backend" "train.device=$device" \
      "train.amp=$amp" "train.epochs=$epochs" train.batch_size=64 train.progress=none \
      > "$res/train_$amp.out" 2>&1 || { cat "$res/train_$amp.out"; die "train (amp $amp) failed"; }
    grep -E "^training:|^device |^epoch " "$res/train_$amp.out" | sed "s/^/  [$amp] /"
    cp "$work/run_$amp/metrics.jsonl" "$res/metrics_$amp.jsonl"
  done

  say "4/5 resnet50 at ${size} px: slidetrain vs Python PyTorch, synthetic and streamed"
  local threads; threads=$(( $(nproc) > 8 ? 8 : $(nproc) ))
  for amp in off bf16 fp16; do
    busy "cpp_synthetic_$amp" run "$bench" synthetic --model resnet50 --size "$size" --batch "$batch" \
      --steps "$steps" --amp "$amp" --device "$device" --threads "$threads"
    busy "py_synthetic_$amp" "$py" "$ROOT/bench/train_step.py" --model resnet50 --size "$size" \
      --batch "$batch" --steps "$steps" --warmup 3 --amp "$amp" --device "$device" --threads "$threads"
  done
  for amp in off bf16; do
    busy "cpp_stream_$amp" run "$bench" stream --cohort "$cohort" --cache "$work/cache_stream" \
      --model resnet50 --size "$ssize" --batch "$batch" --steps "$steps" --amp "$amp" \
      --device "$device" --threads "$threads" --workers "$(nproc)"
  done

  say "5/5 slidetrain features: the trained small_cnn as encoder on the CPU, then on $device (amp off, bf16)"
  local fa
  for fa in cpu off bf16; do
    local fdev="$device" famp="$fa"
    [[ $fa == cpu ]] && fdev=cpu famp=off
    run "$bin" features -c "$ROOT/configs/demo.yaml" "cohort=$cohort" "cache_dir=$work/cache" \
      "run_dir=$work/run_off" "features.out_dir=$work/features_$fa" "model.pretrained=$work/run_off/weights.pt" \
      "train.device=$fdev" "train.backend=$([[ $fa == cpu ]] && echo auto || echo "$backend")" "train.amp=$famp" \
      > "$res/features_$fa.out" 2>&1 || { cat "$res/features_$fa.out"; die "features ($fa) failed"; }
    grep "^features: wrote" "$res/features_$fa.out" | sed "s/^/  [$fa] /"
  done

  "$py" - "$res" "$out/gpu_check.json" "$dry" "$(( $(date +%s) - start ))" "$work" <<'PY'
import glob, json, os, re, subprocess, sys
res, out, dry, seconds = sys.argv[1], sys.argv[2], sys.argv[3] == "1", int(sys.argv[4])
def kv(name):
    path = os.path.join(res, name + ".out")
    if not os.path.exists(path):
        return None
    lines = [l for l in open(path).read().splitlines() if "=" in l]
    if not lines:
        return None
    d = {}
    for tok in lines[-1].split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            try:
                v = float(v)
            except ValueError:
                pass
            d[k] = v
    return d
def busy(name):
    path = os.path.join(res, name + ".util")
    if not os.path.exists(path):
        return None
    vals = [float(x) for x in open(path).read().split() if re.match(r"^[0-9.]+$", x)]
    return round(sum(vals) / len(vals) / 100, 3) if vals else None
def curve(amp):
    rows = [json.loads(l) for l in open(os.path.join(res, "metrics_%s.jsonl" % amp))]
    return {"loss": [r["loss"] for r in rows], "train_accuracy": [r["train"]["accuracy"] for r in rows],
            "amp": [r.get("amp") for r in rows],
            "gpu_busy_pct": [r.get("gpu_busy_pct") for r in rows]}  # the trainer's own NVML figure
import torch
r = {"dry_run": dry, "seconds": seconds, "torch": torch.__version__, "cuda": torch.version.cuda,
     "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
     "nccl_tests": [l for l in open(os.path.join(res, "nccl_tests.out")).read().splitlines()
                    if re.match(r"^\[ +(PASSED|FAILED|SKIPPED) +\] [0-9]+ test", l)],
     "cuda_vs_cpu": kv("compare"),
     "trainer_loss_curves": {amp: curve(amp) for amp in ("off", "fp16", "bf16")},
     "resnet50": {}}
for amp in ("off", "bf16", "fp16"):
    c, p = kv("cpp_synthetic_" + amp), kv("py_synthetic_" + amp)
    r["resnet50"]["synthetic_" + amp] = {
        "slidetrain_images_per_s": c and c.get("images_per_s"),
        "pytorch_images_per_s": p and p.get("images_per_s"),
        "ratio": (c and p and p.get("images_per_s")) and round(c["images_per_s"] / p["images_per_s"], 3),
        "gpu_busy_slidetrain": busy("cpp_synthetic_" + amp), "gpu_busy_pytorch": busy("py_synthetic_" + amp)}
for amp in ("off", "bf16"):
    s = kv("cpp_stream_" + amp)
    r["resnet50"]["streamed_" + amp] = dict(s or {}, gpu_busy=busy("cpp_stream_" + amp))
# Features on the device vs the CPU run (same encoder, same patches): patches/s and max abs difference.
import h5py, numpy as np
work = sys.argv[5]
def features(name):
    d = os.path.join(work, "features_" + name)
    return {f: h5py.File(os.path.join(d, f), "r")["features"][()] for f in sorted(os.listdir(d)) if f.endswith(".h5")}
def rate(name):
    m = re.search(r"\(([0-9.]+) patches/s", open(os.path.join(res, "features_%s.out" % name)).read())
    return m and float(m.group(1))
cpu = features("cpu")
r["features"] = {"cpu_patches_per_s": rate("cpu")}
for name in ("off", "bf16"):
    dev = features(name)
    assert dev.keys() == cpu.keys(), (name, dev.keys(), cpu.keys())
    r["features"][name] = {"patches_per_s": rate(name), "max_abs_diff_vs_cpu":
                           float(max(np.abs(dev[k].astype(np.float64) - cpu[k]).max() for k in cpu))}
json.dump(r, open(out, "w"), indent=2)
print(json.dumps(r, indent=2))
PY
  say "done in $(( $(date +%s) - start )) s: $out/gpu_check.json"
}

# ---------------------------------------------------------------------------------------------
# --dry-run: the same, inside the CUDA compat root, on the CPU.
# ---------------------------------------------------------------------------------------------
dry_run() {
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
  chroot "$r" env -u LD_LIBRARY_PATH SLIDETRAIN_GPU_CARRY=/gpucheck/src/.gpu_carry $onednn \
    bash /gpucheck/src/launch/gpu_check.sh --inside-dry-run /gpucheck/out
}

case "$1" in
  --prepare) prepare ;;
  --dry-run) [[ $# -eq 2 ]] || usage; dry_run "$2" ;;
  --inside-dry-run) run_check "$2" 1 ;;
  -*) usage ;;
  *) [[ $# -eq 1 ]] || usage; run_check "$1" 0 ;;
esac
