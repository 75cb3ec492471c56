#!/usr/bin/env bash
# predict.threshold_from: val picks each pooling method's slide threshold on the val split
# (Youden's J) and applies it to the predicted split; thresholds.json and slide_metrics.json hold
# them; fixed, a val split of one class and a cohort without val split use predict.threshold.
# Usage: predict_threshold_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=8 synth.width=1536 synth.height=1024 synth.test_fraction=0.25
      synth.val_fraction=0.25 train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=64
      train.threads=2 predict.heatmaps=false predict.topk=3)
"$BIN" synth "${ARGS[@]}" > /dev/null
[[ $(grep -c ',val$' "$W/c/cohort.csv") -eq 2 ]] || { cat "$W/c/cohort.csv"; fail "2 val slides"; }
"$BIN" train "${ARGS[@]}" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train"; }
"$BIN" predict "${ARGS[@]}" > "$W/predict.log" 2>&1 || { cat "$W/predict.log"; fail "predict"; }
cat "$W/predict.log"
for m in mean max topk vote quantile; do
  grep -qE "^slide threshold \($m pooling\): [0-9.]+ \(Youden's J on 2 val slides\)" "$W/predict.log" ||
    fail "no val threshold line for $m"
done
grep -qE "^held-out slide AUC \(topk pooling\): [0-9.]+ \[[0-9.]+, [0-9.]+\] \(95 % bootstrap CI, [0-9]+ resamples\)" \
  "$W/predict.log" || fail "no AUC line with its CI"
head -1 "$W/run/slides.csv" | grep -q '^slide_id,label,patches,score_mean,pred_mean,score_max,pred_max,score_topk,pred_topk,score_vote,pred_vote,score_quantile,pred_quantile,note$' ||
  { head -1 "$W/run/slides.csv"; fail "slides.csv header"; }
# Each slide's prediction is its score cut at the method's threshold from thresholds.json.
python3 - "$W/run" <<'PY' || fail "thresholds.json, slide_metrics.json or slides.csv"
import csv, json, sys
run = sys.argv[1]
t = json.load(open(run + "/thresholds.json"))
m = json.load(open(run + "/slide_metrics.json"))
methods = ["mean", "max", "topk", "vote", "quantile"]
assert t["val_slides"] == 2, t
assert sorted(t["methods"]) == sorted(methods) and sorted(m["methods"]) == sorted(methods), (t, m)
assert m["chosen"] == "topk" and m["split"] == "test", m
for k in methods:
    assert t["methods"][k]["from"] == "val", t
    r = m["methods"][k]
    assert r["threshold"] == t["methods"][k]["threshold"] and r["threshold_from"] == "val", r
    assert r["slides"] == 2 and 0 <= r["accuracy"] <= 1, r
    assert r["auc_lo"] <= r["auc"] <= r["auc_hi"], r
rows = list(csv.DictReader(open(run + "/slides.csv")))
assert len(rows) == 2, rows
for row in rows:
    for k in methods:
        pred = "tumor" if float(row["score_" + k]) >= t["methods"][k]["threshold"] else "normal"
        assert row["pred_" + k] == pred, (k, row, t["methods"][k])
PY
"$BIN" predict "${ARGS[@]}" predict.threshold_from=fixed > "$W/fixed.log" 2>&1 || { cat "$W/fixed.log"; fail "predict fixed"; }
grep -q "^slide threshold (mean pooling): 0.5000 (fixed predict.threshold)" "$W/fixed.log" || { cat "$W/fixed.log"; fail "fixed threshold"; }
grep -q '"mean": {"threshold": 0.5, "from": "fixed"}' "$W/run/thresholds.json" || fail "thresholds.json of fixed"
# Val with one slide only (one class): the fixed threshold, saying why.
awk -F, 'BEGIN{OFS=","} $4=="val" && !done {$4="train"; done=1} {print}' "$W/c/cohort.csv" > "$W/c/one.csv"
"$BIN" predict "${ARGS[@]}" "cohort=$W/c/one.csv" > "$W/one.log" 2>&1 || { cat "$W/one.log"; fail "predict one-class val"; }
grep -q "predict.threshold_from: val, but the 1 val slide with a label and a read patch holds one class only: using the fixed predict.threshold 0.5" "$W/one.log" ||
  { cat "$W/one.log"; fail "one-class val fallback"; }
sed 's/,val$/,train/' "$W/c/cohort.csv" > "$W/c/noval.csv"
"$BIN" predict "${ARGS[@]}" "cohort=$W/c/noval.csv" > "$W/noval.log" 2>&1 || { cat "$W/noval.log"; fail "predict without val"; }
grep -q "predict.threshold_from: val, but the cohort has no val split: using the fixed predict.threshold 0.5" "$W/noval.log" ||
  { cat "$W/noval.log"; fail "no-val fallback"; }
echo "predict thresholds from val OK"
