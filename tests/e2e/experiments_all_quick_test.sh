#!/usr/bin/env bash
# Every seed study's quick profile end to end (label `long`, run by launch/test.sh --all; about
# 20 minutes on 2 cores, docs/experiments.md): launch/experiment.sh NAME --quick for each study of
# configs/experiments/, then its compare.csv must hold one group per variant, each with a final
# metric, and compare.html must name the study's metric. Prints each study's wall time.
# Usage: experiments_all_quick_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export SLIDETRAIN_BIN="$BIN"
for dir in "$SRC"/configs/experiments/*/; do
  name="$(basename "$dir")"
  start=$(date +%s)
  "$SRC/launch/experiment.sh" "$name" --quick --out "$W/$name" > "$W/$name.log" 2>&1 ||
    { tail -40 "$W/$name.log"; fail "$name --quick"; }
  echo "$name --quick: $(( $(date +%s) - start )) s"
  metric="$(awk '$1 == "metric" {print $2}' "$dir/study.txt")"
  /usr/bin/python3 - "$W/$name/compare/compare.csv" "$dir/study.txt" "${metric:-}" <<'PY' || fail "$name: compare.csv (above)"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
variants = [l.split()[1] for l in open(sys.argv[2]) if l.startswith("variant ")]
groups = list(dict.fromkeys(r["group"] for r in rows))
assert groups == variants, (groups, variants)
metric = sys.argv[3]
if metric:
    for g in groups:
        mean = [r for r in rows if r["group"] == g and r["run"] == "mean"][0]
        assert mean[metric] != "", (g, metric)
PY
  [[ -z "$metric" ]] || grep -q "$metric over each group" "$W/$name/compare/compare.html" ||
    fail "$name: compare.html does not boxplot $metric"
done
