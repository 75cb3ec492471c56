#!/usr/bin/env bash
# The command line a user expects: help in every usual spelling (stdout, exit 0), --version with
# the libraries it runs with, and `cmake --install` putting the program, the launchers, configs,
# docs and the licence in place.
# Usage: cli_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
for h in --help -h help; do
  "$BIN" "$h" > "$W/help.txt" || fail "slidetrain $h exits non-zero"
  grep -q "^usage: slidetrain <command>" "$W/help.txt" || fail "slidetrain $h prints no usage"
done
for v in synth tile train cv predict config; do
  "$BIN" "$v" --help > "$W/$v.txt" || fail "slidetrain $v --help exits non-zero"
  grep -q "slidetrain $v" "$W/$v.txt" || fail "slidetrain $v --help does not describe $v"
  "$BIN" help "$v" | cmp -s - "$W/$v.txt" || fail "slidetrain help $v differs from $v --help"
done
if "$BIN" help nonsense > /dev/null 2>&1; then fail "help of an unknown command succeeded"; fi
"$BIN" --version > "$W/version.txt" || fail "--version exits non-zero"
cat "$W/version.txt"
for lib in "^slidetrain [0-9]" "^libtorch [0-9]" "^OpenSlide [0-9]" "^libvips" "MPI" "NCCL"; do
  grep -qE "$lib" "$W/version.txt" || fail "--version lacks $lib"
done
# Installation into a prefix.
BUILD="$(dirname "$BIN")"
cmake --install "$BUILD" --prefix "$W/inst" > "$W/install.log" || { cat "$W/install.log"; fail "cmake --install"; }
for f in bin/slidetrain share/slidetrain/launch/mpirun.sh share/slidetrain/launch/slurm.sbatch \
         share/slidetrain/configs/demo.yaml share/doc/slidetrain/config.md \
         share/doc/slidetrain/LICENSE share/doc/slidetrain/licenses.md \
         share/doc/slidetrain/third_party/vega/LICENSE-vega share/doc/slidetrain/third_party/vega/THIRD_PARTY_NOTICES.txt; do
  [[ -e "$W/inst/$f" ]] || fail "cmake --install did not install $f"
done
"$W/inst/bin/slidetrain" --version > /dev/null || fail "the installed program does not run"
grep -q "Apache License" "$W/inst/share/doc/slidetrain/LICENSE" || fail "LICENSE is not Apache-2.0"
echo "command line and install OK"
