#!/usr/bin/env bash
# The quick profile of one seed study end to end: launch/experiment.sh small_cnn --quick (synthetic
# cohort written as patch folders, six cross-validated small-CNN variants, slidetrain compare).
# Checks compare.csv (one group per variant, three folds each, the TP/TN/FP/FN rates and F1),
# opens compare.html in headless Chromium (boxplot and curves drawn, nothing fetched), then runs
# the study again: every step is kept (resumed, not rerun) and the page is the same.
# Usage: experiment_quick_test.sh <slidetrain binary> <source dir>   (~1 min on 2 cores)
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export SLIDETRAIN_BIN="$BIN"
OUT="$(cd "$(dirname "$BIN")" && pwd)/Testing/experiment_quick"
mkdir -p "$OUT"
start=$(date +%s)
"$SRC/launch/experiment.sh" small_cnn --quick --out "$W/study" train.threads=2 > "$W/run1.log" 2>&1 ||
  { cat "$W/run1.log"; fail "experiment.sh small_cnn --quick"; }
echo "small_cnn --quick: $(( $(date +%s) - start )) s"
CMP="$W/study/compare"
[[ -s "$CMP/compare.html" && -s "$CMP/compare.csv" ]] || fail "no compare.html/compare.csv"
cp "$CMP/compare.html" "$CMP/compare.csv" "$OUT/"
/usr/bin/python3 - "$CMP/compare.csv" "$SRC/configs/experiments/small_cnn/study.txt" <<'PY' || fail "compare.csv (above)"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
variants = [l.split()[1] for l in open(sys.argv[2]) if l.startswith("variant ")]
groups = list(dict.fromkeys(r["group"] for r in rows))
assert groups == variants, (groups, variants)
for g in groups:
    folds = [r for r in rows if r["group"] == g and r["run"] not in ("mean", "sd")]
    assert [r["run"] for r in folds] == ["fold_0", "fold_1", "fold_2"], (g, [r["run"] for r in folds])
    assert all(r["kind"] == "cv" for r in folds)
    for r in folds:
        for c in ("patch_f1", "patch_tpr", "patch_tnr", "patch_fpr", "patch_fnr", "patch_f1_macro"):
            assert r[c] != "" and 0 <= float(r[c]) <= 1, (g, c, r[c])
print("compare.csv: %d variants x 3 folds" % len(groups))
PY
grep -q "patch_f1_macro over each group" "$CMP/compare.html" || fail "compare.html does not boxplot the study's metric"
/usr/bin/python3 "$SRC/tests/python/report_browser.py" "$CMP/compare.html" \
  --expect boxplot,curves_loss,curves_accuracy,curves_auc --screenshot "$OUT/compare.png" ||
  fail "compare.html does not work in Chromium (above)"

# A second run keeps every finished step and writes the same table.
cp "$CMP/compare.csv" "$W/first.csv"
"$SRC/launch/experiment.sh" small_cnn --quick --out "$W/study" train.threads=2 > "$W/run2.log" 2>&1 ||
  { cat "$W/run2.log"; fail "the rerun"; }
kept=$(grep -c "done before, kept" "$W/run2.log" || true)
[[ "$kept" -eq 7 ]] || { cat "$W/run2.log"; fail "the rerun kept $kept of 7 steps (synth + 6 variants)"; }
cmp -s "$W/first.csv" "$CMP/compare.csv" || fail "the rerun's compare.csv differs"
echo "kept: $OUT/compare.html and compare.png"

# A changed command (here one more epoch) runs the variants again; the earlier runs are moved
# aside, not lost, and not resumed (their checkpoints belong to another experiment).
"$SRC/launch/experiment.sh" small_cnn --quick --out "$W/study" train.threads=2 train.epochs=5 > "$W/run3.log" 2>&1 ||
  { cat "$W/run3.log"; fail "the run with a changed command"; }
aside=$(ls -d "$W"/study/runs/convnn_1.replaced-* 2>/dev/null | wc -l)
[[ "$aside" -eq 1 && -s "$(ls -d "$W"/study/runs/convnn_1.replaced-*)/cv_summary.json" ]] ||
  { cat "$W/run3.log"; fail "the earlier convnn_1 run was not kept aside"; }
tail -1 "$W/study/runs/convnn_1/fold_0/metrics.jsonl" | grep -q '"epoch": 5' ||
  fail "convnn_1 was not trained again with 5 epochs"
echo "a changed command reran the variants, earlier runs kept aside"
