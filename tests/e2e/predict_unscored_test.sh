#!/usr/bin/env bash
# predict with a held-out slide that yields no patch (a blank slide: no tissue): the slide is
# listed in slides.csv with the reason and no score, left out of the metrics (no NaN reaches the
# AUC), and counted in the summary; the other slides are scored as usual. Its exports: an empty
# FeatureCollection and no heatmap TIFF.
# Usage: predict_unscored_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$SRC/tests/e2e/lib.sh"
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=4 synth.width=1536 synth.height=1024 synth.test_fraction=0.5
      synth.val_fraction=0
      train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=64 train.threads=2
      on_bad_slide=skip)
"$BIN" synth "${ARGS[@]}" > /dev/null
# A white slide (a tiled pyramidal TIFF, as a scanner writes): tissue detection finds nothing.
write_blank_slide "$W/c/blank.tif" 1536 1024
echo "blank,$W/c/blank.tif,tumor,test" >> "$W/c/cohort.csv"
"$BIN" train "${ARGS[@]}" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train"; }
"$BIN" predict "${ARGS[@]}" > "$W/predict.log" 2>&1 || { cat "$W/predict.log"; fail "predict"; }
cat "$W/predict.log"
grep -q "1 of 3 slides have no usable patch and are left out of the metrics" "$W/predict.log" ||
  fail "summary does not count the slide without patches"
grep -q "blank: no patches in the index" "$W/predict.log" || fail "the reason is not given"
grep -q "held-out slide-level accuracy (topk pooling, 2 slides)" "$W/predict.log" ||
  fail "the metrics should cover the 2 scored slides"
grep -q '^blank,tumor,0,,,,,,,,,,,no patches in the index' "$W/run/slides.csv" ||
  { cat "$W/run/slides.csv"; fail "slides.csv row of the blank slide"; }
if grep -qi "nan" "$W/run/slides.csv"; then cat "$W/run/slides.csv"; fail "NaN in slides.csv"; fi
# predict.exports: the blank slide gets an empty FeatureCollection and no heatmap TIFF.
grep -q '^wrote 5 exports of 3 slides to' "$W/predict.log" || fail "exports line"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d == {"type": "FeatureCollection", "features": []}, d' \
  "$W/run/exports/blank.geojson" || fail "exports/blank.geojson"
[[ ! -e "$W/run/exports/blank_heatmap.tiff" ]] || fail "a heatmap TIFF for the blank slide"
echo "predict with an unscored slide OK"
