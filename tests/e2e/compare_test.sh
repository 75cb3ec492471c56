#!/usr/bin/env bash
# slidetrain compare end to end: a tiny synthetic cohort (64-px patches, 2 epochs), a 2-fold cv
# and two train runs (one labelled by NAME=DIR, both given the same label: one group of two
# seeds), then compare. Checks compare.csv (a row per run, mean/sd rows, the mean matching the
# runs), bad inputs (no run folder, a missing metrics.jsonl, corrupt cv_summary.json, unknown
# metric: an error naming the file or the metric), and opens compare.html, the train report and
# the cv report in headless Chromium (tests/python/report_browser.py: every expected chart drawn,
# no console error). Pages and screenshots are kept under <build>/Testing/compare/.
# Usage: compare_test.sh <slidetrain binary> <source dir>   (needs Debian's chromium)
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$SRC/tests/e2e/lib.sh"
OUT="$(browser_test_dir compare)"
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      synth.num_slides=8 synth.width=1024 synth.height=768 synth.test_fraction=0 synth.val_fraction=0.25
      train.epochs=2 train.batch_size=16 tiling.level=0 tiling.patch_size=64 data.max_patches_per_slide=24
      train.threads=2 predict.exports=false)
start=$(date +%s)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$BIN" cv "${ARGS[@]}" "run_dir=$W/cv" cv.folds=2 > "$W/cv.log" 2>&1 || { cat "$W/cv.log"; fail "cv"; }
for s in 1 2; do
  "$BIN" train "${ARGS[@]}" "run_dir=$W/seed$s" seed=$s > "$W/train$s.log" 2>&1 || { cat "$W/train$s.log"; fail "train"; }
done
echo "cv (2 folds) and 2 train runs: $(( $(date +%s) - start )) s"
[[ -s "$W/seed1/report.html" ]] || fail "train wrote no report.html"
[[ -s "$W/cv/fold_0/report.html" && -s "$W/cv/report.html" ]] || fail "cv wrote no report.html (fold or summary)"

"$BIN" compare --out "$W/cmp" --metric val_accuracy "$W/cv" seeds="$W/seed1" seeds="$W/seed2" > "$W/cmp.log" 2>&1 \
  || { cat "$W/cmp.log"; fail "compare"; }
cat "$W/cmp.log"
CSV="$W/cmp/compare.csv"
cp "$CSV" "$W/cmp/compare.html" "$OUT/"
/usr/bin/python3 - "$CSV" <<'PY' || fail "compare.csv (above)"
import csv, math, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cols = rows[0].keys()
for c in ["group", "run", "kind", "n", "dir", "epochs", "val_accuracy", "val_auc", "patch_auc", "slide_accuracy"]:
    assert c in cols, "no column %s in %s" % (c, list(cols))
def runs(g): return [r for r in rows if r["group"] == g and r["run"] not in ("mean", "sd")]
def stat(g, s): return [r for r in rows if r["group"] == g and r["run"] == s][0]
assert [r["run"] for r in runs("cv")] == ["fold_0", "fold_1"], [r["run"] for r in runs("cv")]
assert [r["run"] for r in runs("seeds")] == ["seed1", "seed2"], [r["run"] for r in runs("seeds")]
assert stat("cv", "mean")["n"] == "2" and stat("seeds", "sd")["n"] == "2"
assert all(r["kind"] == "cv" for r in runs("cv")) and stat("seeds", "mean")["kind"] == "train"
for g in ("cv", "seeds"):
    v = [float(r["val_accuracy"]) for r in runs(g)]
    # The CSV holds 6 significant digits: each value is off by up to 5e-7 (values <= 1), so the
    # mean and sd recomputed from the rounded fold values may differ by about 1e-6.
    assert math.isclose(float(stat(g, "mean")["val_accuracy"]), statistics.mean(v), rel_tol=1e-5, abs_tol=2e-6), g
    assert math.isclose(float(stat(g, "sd")["val_accuracy"]), statistics.stdev(v), rel_tol=1e-5, abs_tol=2e-6), \
        (g, stat(g, "sd")["val_accuracy"], statistics.stdev(v), v)
    assert all(r["epochs"] == "2" for r in runs(g))
# patch_auc comes from cv_summary.json: the folds have it, the train runs do not.
assert all(r["patch_auc"] != "" for r in runs("cv")) and all(r["patch_auc"] == "" for r in runs("seeds"))
# The small-CNN study's scores: the positive class's F1 and the TP/TN/FP/FN rates of each fold.
for r in runs("cv"):
    tpr, tnr, fpr, fnr, f1 = (float(r[c]) for c in ("patch_tpr", "patch_tnr", "patch_fpr", "patch_fnr", "patch_f1"))
    assert math.isclose(tpr + fnr, 1, abs_tol=1e-5) and math.isclose(tnr + fpr, 1, abs_tol=1e-5), r
    assert 0 <= f1 <= 1, r
print("compare.csv OK:", len(rows), "rows")
PY
grep -q "val_accuracy over each group" "$W/cmp/compare.html" || fail "compare.html does not name the metric"

# Bad inputs stop with an error naming the file or the metric.
expect_error() {  # expect_error REGEX ARGS...
  local re="$1"; shift
  if "$BIN" compare --out "$W/bad" "$@" > "$W/bad.log" 2>&1; then cat "$W/bad.log"; fail "compare $* succeeded"; fi
  grep -qE -- "$re" "$W/bad.log" || { cat "$W/bad.log"; fail "compare $*: no error matching '$re'"; }
  echo "bad input fails as it should: $(head -1 "$W/bad.log")"
}
mkdir -p "$W/empty"
expect_error "$W/empty: not a run folder" "$W/empty"
expect_error "--metric nope: unknown metric" --metric nope "$W/seed1"
expect_error "--metric patch_auc: no run has it" --metric patch_auc "$W/seed1"
cp -r "$W/cv" "$W/cv_nolog"; rm "$W/cv_nolog/fold_1/metrics.jsonl"
expect_error "$W/cv_nolog/fold_1/metrics.jsonl: missing" "$W/cv_nolog"
cp -r "$W/cv" "$W/cv_corrupt"; printf '{"folds": [{"fold": 0,' > "$W/cv_corrupt/cv_summary.json"
expect_error "$W/cv_corrupt/cv_summary.json" "$W/cv_corrupt"

CHECK=(/usr/bin/python3 "$SRC/tests/python/report_browser.py")
check() {  # check PAGE EXPECT NAME
  local t=$(date +%s%N)
  cp "$1" "$OUT/$3.html"
  "${CHECK[@]}" "$1" --expect "$2" --screenshot "$OUT/$3.png" || fail "$3 does not work in Chromium (above)"
  [[ -s "$OUT/$3.png" ]] || fail "no screenshot of $3"
  echo "browser check of $3: $(( ($(date +%s%N) - t) / 1000000 )) ms"
}
check "$W/cmp/compare.html" boxplot,curves_loss,curves_accuracy,curves_auc compare
check "$W/seed1/report.html" loss,accuracy,lr,throughput,data_wait,confusion,roc_patches,pr_patches train_report
check "$W/cv/report.html" boxplot,curves_loss,curves_accuracy,curves_auc cv_report
echo "kept: $OUT"
echo "compare OK"
