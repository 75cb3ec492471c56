# Sourced by launch/compat.sh and launch/gpu_check.sh (--dry-run), which run tests in a Debian
# trixie root. Trixie's oneDNN 3.6 (libdnnl3, under its libtorch 2.6) dies with SIGFPE (integer
# divide by zero) while creating the backward primitive of some strided convolutions on some CPUs:
# seen on an AMD EPYC VM (family 26, AVX-512) in resnet50's backward, in slidetrain's tests and
# in plain python3-torch alike, with AVX2 kernels and up; bookworm's libtorch 1.13 is not affected.
# docs/testing.md says what a user on such a CPU can do.
#
# onednn_guard ROOT: prints the environment setting the tests need in ROOT: nothing when the probe
# (python3-torch: a 1x1 stride-2 convolution's backward) passes, ONEDNN_MAX_CPU_ISA=AVX when it
# passes only with oneDNN limited to AVX kernels; fails, with the probe's error, otherwise.
onednn_guard() {
  local root="$1" probe='import torch
x = torch.randn(2, 1024, 2, 2, requires_grad=True)
w = torch.randn(2048, 1024, 1, 1, requires_grad=True)
torch.nn.functional.conv2d(x, w, stride=2).sum().backward()'
  if chroot "$root" python3 -c "$probe" > /dev/null 2>&1; then return 0; fi
  if chroot "$root" env ONEDNN_MAX_CPU_ISA=AVX python3 -c "$probe" > /dev/null 2>&1; then
    echo "ONEDNN_MAX_CPU_ISA=AVX"
    return 0
  fi
  echo "the oneDNN probe fails in $root even with ONEDNN_MAX_CPU_ISA=AVX:" >&2
  chroot "$root" python3 -c "$probe" 2>&1 | tail -5 >&2
  return 1
}
