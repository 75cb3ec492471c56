#!/usr/bin/env bash
# report.html in a real browser: a small train + predict run (a val split, and one blank slide
# with no patch for the quality-control section), then headless Chromium opens the report from
# file:// (tests/python/report_browser.py, the DevTools protocol): no console error or warning, no
# failed or outside request, every expected chart drawn, tissue-mask and heatmap previews loaded. A screenshot
# and the report are kept under <build>/Testing/report_browser/. Then the checker is shown to
# fail on broken copies of the page: vega-embed's script removed, a spec with a wrong mark type,
# a missing image, a script fetched from the network.
# Usage: report_browser_test.sh <slidetrain binary> <source dir>   (needs Debian's chromium)
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$SRC/tests/e2e/lib.sh"
OUT="$(browser_test_dir report_browser)"
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=8 synth.width=1536 synth.height=1024 synth.test_fraction=0.25
      synth.val_fraction=0.25 train.epochs=2 train.batch_size=16 tiling.level=0 tiling.patch_size=64
      data.max_patches_per_slide=48 train.threads=2 predict.exports=false on_bad_slide=skip)
"$BIN" synth "${ARGS[@]}" > /dev/null
# A white slide: tissue detection finds nothing, so it gets no score (the report's QC section).
write_blank_slide "$W/c/blank.tif" 1024 768
echo "blank,$W/c/blank.tif,tumor,test" >> "$W/c/cohort.csv"
"$BIN" train "${ARGS[@]}" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train"; }
"$BIN" predict "${ARGS[@]}" > "$W/predict.log" 2>&1 || { cat "$W/predict.log"; fail "predict"; }
REPORT="$W/run/report.html"
cp "$REPORT" "$OUT/report.html"
grep -q '<li>no score: blank: no patches in the index' "$REPORT" || fail "the QC section does not list the blank slide"
grep -q '<img src="data:image/jpeg;base64,' "$REPORT" || fail "no heatmap preview inline"
grep -q 'alt="tissue mask of ' "$REPORT" || fail "no tissue mask preview in the slide table"
ls "$W"/run/qc/*_tissue.png > /dev/null 2>&1 || fail "predict wrote no qc/<slide>_tissue.png"
if grep -q '<script src=' "$REPORT"; then fail "the report loads a script from elsewhere"; fi

EXPECT=loss,accuracy,lr,throughput,data_wait,confusion,roc_slides,pr_slides,roc_patches,pr_patches
CHECK=(/usr/bin/python3 "$SRC/tests/python/report_browser.py")
start=$(date +%s%N)
"${CHECK[@]}" "$REPORT" --expect "$EXPECT" --screenshot "$OUT/report.png" || fail "the report does not work in Chromium (above)"
echo "browser check of the report: $(( ($(date +%s%N) - start) / 1000000 )) ms"
[[ -s "$OUT/report.png" ]] || fail "no screenshot"
echo "kept: $OUT/report.html and $OUT/report.png"

# The checker must fail on broken pages (exit 1, saying why).
mutate "$REPORT" "$W" no_vega_embed 's[:s.index("<script data-library=\"vega-embed.min.js\">")] + s[s.index("</script>", s.index("<script data-library=\"vega-embed.min.js\">")) + 9:]'
expect_failure "$W" no_vega_embed "console error: .*vegaEmbed is not defined" --expect "$EXPECT"
mutate "$REPORT" "$W" bad_spec 's.replace("\"type\":\"line\"", "\"type\":\"lyne\"", 1)'
expect_failure "$W" bad_spec "charts: [0-9]+ drawn, 1 failed" --expect "$EXPECT"
mutate "$REPORT" "$W" missing_image 's.replace("<h2 id=\"qc\">", "<img src=\"heatmaps/none.png\"><h2 id=\"qc\">", 1)'
expect_failure "$W" missing_image "request failed: net::ERR_FILE_NOT_FOUND" --expect "$EXPECT"
mutate "$REPORT" "$W" network_script 's.replace("</title>", "</title><script src=\"https://cdn.invalid/vega.js\"></script>", 1)'
expect_failure "$W" network_script "the page asked for https://cdn.invalid/vega.js" --expect "$EXPECT"
echo "report.html in Chromium OK"
