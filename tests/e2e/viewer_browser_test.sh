#!/usr/bin/env bash
# The slide viewer in a real browser: a small train + predict run with predict.viewer on (and one
# blank slide with no patch, whose page shows the slide without a heatmap), then headless Chromium
# opens viewer pages from file:// (tests/python/viewer_browser.py, the DevTools protocol): no
# console error or warning, no failed request, nothing asked for outside the viewer folder, and
# OpenSeadragon loaded the tiles of both the slide and the heatmap overlay. A screenshot and the
# page are kept under <build>/Testing/viewer/. Then the checker is shown to fail on broken copies
# of the page: a wrong tile URL, the overlay left out, a file outside the viewer folder,
# OpenSeadragon's WebGL drawer (file:// tiles are cross-origin: it warns and cannot use them), a
# script fetched from the network.
# Usage: viewer_browser_test.sh <slidetrain binary> <source dir>   (needs Debian's chromium)
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$SRC/tests/e2e/lib.sh"
OUT="$(browser_test_dir viewer)"
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=6 synth.width=1536 synth.height=1024 synth.test_fraction=0.34
      train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=64
      data.max_patches_per_slide=32 train.threads=2 predict.exports=false on_bad_slide=skip
      predict.viewer=true predict.viewer_max_side=1024)
"$BIN" synth "${ARGS[@]}" > /dev/null
write_blank_slide "$W/c/blank.tif" 1024 768
echo "blank,$W/c/blank.tif,tumor,test" >> "$W/c/cohort.csv"
"$BIN" train "${ARGS[@]}" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train"; }
"$BIN" predict "${ARGS[@]}" > "$W/predict.log" 2>&1 || { cat "$W/predict.log"; fail "predict"; }
grep -E '^wrote slide viewers' "$W/predict.log" || fail "predict did not say it wrote the viewers"
V="$W/run/viewer"
SLIDE="$(awk -F, 'NR > 1 && $1 != "blank" && $3 > 0 { print $1; exit }' "$W/run/slides.csv")"
[[ -n "$SLIDE" ]] || fail "no scored slide in slides.csv"
PAGE="$V/$SLIDE.html"
[[ -f "$PAGE" && -f "$V/$SLIDE.dzi" && -d "$V/${SLIDE}_files" && -d "$V/${SLIDE}_heatmap_files" ]] ||
  fail "viewer files of $SLIDE missing: $(ls "$V" | head)"
[[ -f "$V/blank.html" && ! -e "$V/blank_heatmap_files" ]] || fail "the blank slide's page, without a heatmap, is missing"
grep -q "<a class=\"viewer\" href=\"viewer/$SLIDE.html\">viewer</a>" "$W/run/report.html" ||
  fail "report.html does not link $SLIDE to its viewer"
if grep -q '<script src=' "$PAGE"; then fail "the viewer page loads a script from elsewhere"; fi
echo "viewer folder: $(du -sh "$V" | cut -f1), $(find "$V" -type f | wc -l) files for $(ls "$V"/*.html | wc -l) slides"

CHECK=(/usr/bin/python3 "$SRC/tests/python/viewer_browser.py")
start=$(date +%s%N)
"${CHECK[@]}" "$PAGE" --expect slide,heatmap --screenshot "$OUT/viewer.png" || fail "the viewer does not work in Chromium (above)"
echo "browser check of the viewer: $(( ($(date +%s%N) - start) / 1000000 )) ms"
"${CHECK[@]}" "$V/blank.html" --expect slide || fail "the blank slide's viewer does not work in Chromium (above)"
[[ -s "$OUT/viewer.png" ]] || fail "no screenshot"
cp "$PAGE" "$OUT/viewer.html"
echo "kept: $OUT/viewer.png and $OUT/viewer.html"

# The checker must fail on broken pages (exit 1, saying why). The copies lie beside the original,
# so that their tiles are where the page looks for them.
mutate "$PAGE" "$V" wrong_tile_url "s.replace('\"url\":\"${SLIDE}_heatmap_files/\"', '\"url\":\"${SLIDE}_heatmap_filez/\"', 1)"
expect_failure "$V" wrong_tile_url "request failed: net::ERR_FILE_NOT_FOUND" --expect slide,heatmap
mutate "$PAGE" "$V" no_overlay "s[:s.index('\"overlays\":[')] + '\"overlays\":[]}' + s[s.index('</script>', s.index('\"overlays\":[')):]"
expect_failure "$V" no_overlay "images with tiles loaded: slide; expected: heatmap,slide" --expect slide,heatmap
mutate "$PAGE" "$V" outside_file "s.replace('<div id=\"viewer\">', '<img src=\"../heatmaps/${SLIDE}.png\" width=\"1\"><div id=\"viewer\">', 1)"
expect_failure "$V" outside_file "the page asked for file://.*/heatmaps/${SLIDE}.png: only files under" --expect slide,heatmap
mutate "$PAGE" "$V" webgl_drawer "s.replace(\"drawer: 'canvas'\", \"drawer: 'webgl'\", 1)"
expect_failure "$V" webgl_drawer "WebGL cannot be used to draw this TiledImage because it has tainted data" --expect slide,heatmap
mutate "$PAGE" "$V" network_script "s.replace('</title>', '</title><script src=\"https://cdn.invalid/osd.js\"></script>', 1)"
expect_failure "$V" network_script "the page asked for https://cdn.invalid/osd.js" --expect slide,heatmap
echo "viewer in Chromium OK"
