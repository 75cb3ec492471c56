#!/usr/bin/env bash
# docs/config.md must list exactly what `slidetrain config --doc` prints (the schema in code).
# Usage: docs_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
if ! diff <("$BIN" config --doc) <(tail -n +5 "$SRC/docs/config.md"); then
  echo "FAIL: docs/config.md is stale; regenerate it (see its header)" >&2
  exit 1
fi
echo "docs/config.md up to date"
