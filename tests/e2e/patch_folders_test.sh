#!/usr/bin/env bash
# data.source: patch_folders end to end: synth writes the cohort's patches as patch folders
# (synth.patch_folders), mpirun -np 2 train reads them for 2 epochs, predict scores the test
# images (metrics files and report.html, no heatmaps), cv runs 2 folds on a folder without split
# folders, and bad folders fail naming the folder or file.
# Usage: patch_folders_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fail() { echo "FAIL: $*" >&2; exit 1; }
SYNTH=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
       synth.num_slides=6 synth.width=1536 synth.height=1024 synth.test_fraction=0.34 synth.val_fraction=0
       tiling.level=0 tiling.patch_size=64 "synth.patch_folders=$W/pf" synth.patch_folder_max_per_slide=60)
ARGS=(-c "$SRC/configs/demo.yaml" "cache_dir=$W/cache" data.source=patch_folders "data.patch_folders=$W/pf"
      tiling.patch_size=64 train.epochs=2 train.batch_size=16 data.class_balanced=true train.progress=none data.workers=1 train.threads=1)

"$BIN" synth "${SYNTH[@]}" | tee "$W/synth.log"
grep -q "patch images of 6 slides to $W/pf" "$W/synth.log" || fail "no patch-folder line"
for d in train/normal train/tumor test/normal test/tumor; do
  [[ $(ls "$W/pf/$d" | wc -l) -ge 5 ]] || fail "$W/pf/$d holds fewer than 5 images"
done
ls "$W/pf/train/tumor" | head -1 | grep -Eq '^[A-Za-z0-9-]+_[0-9]+_[0-9]+_[0-9]+\.png$' || fail "image names are not <slide>_<x>_<y>.png"

mpirun -np 2 --oversubscribe "$BIN" train "${ARGS[@]}" "run_dir=$W/run" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train"; }
grep -q "train split: .* images (patch folders" "$W/train.log" || { cat "$W/train.log"; fail "train did not read the patch folders"; }
grep -q "epoch 2/2" "$W/train.log" || { cat "$W/train.log"; fail "no epoch 2 line"; }
grep -q "source: patch_folders" "$W/run/config.yaml" || fail "config.yaml lacks data.source"

"$BIN" predict "${ARGS[@]}" "run_dir=$W/run" | tee "$W/predict.log"
acc=$(sed -n 's/^held-out image-level accuracy ([a-z]* pooling, [0-9]* images): \([0-9.]*\)$/\1/p' "$W/predict.log")
[[ -n "$acc" ]] || fail "no image-level accuracy line"
awk -v a="$acc" 'BEGIN{exit !(a >= 0.7)}' || fail "image-level accuracy $acc below 0.7"
# The classification report; the few tumour images must mostly be found (class-balanced training).
awk '$1 == "tumor" && NF == 5 {found = 1; exit !($3 >= 0.5)} END {exit !found}' "$W/predict.log" ||
  fail "no tumour row in the classification report, or tumour recall below 0.5"
for f in patches.csv slides.csv slide_metrics.json thresholds.json report.html; do
  [[ -s "$W/run/$f" ]] || fail "run dir lacks $f"
done
tests=$(find "$W/pf/test" -name '*.png' | wc -l)
[[ $(($(wc -l < "$W/run/slides.csv") - 1)) -eq "$tests" ]] || fail "slides.csv should hold one row per test image ($tests)"
[[ ! -d "$W/run/heatmaps" ]] || fail "heatmaps written for patch folders"
[[ ! -d "$W/run/viewer" ]] || fail "slide viewer written for patch folders (configs/demo.yaml asks for it)"
grep -q "patch folders" "$W/run/report.html" || fail "report.html does not say patch folders"

# cv on a folder without split folders: every image is in train, 2 folds.
mkdir -p "$W/flat" && cp -r "$W/pf/train/normal" "$W/pf/train/tumor" "$W/flat/"
"$BIN" cv "${ARGS[@]}" "data.patch_folders=$W/flat" "run_dir=$W/cv" cv.folds=2 train.epochs=1 > "$W/cv.log" 2>&1 ||
  { cat "$W/cv.log"; fail "cv"; }
[[ -s "$W/cv/cv_summary.csv" && -d "$W/cv/fold_0" && -d "$W/cv/fold_1" ]] || { cat "$W/cv.log"; fail "cv outputs"; }

# Errors name the folder or the file.
if "$BIN" train "${ARGS[@]}" "run_dir=$W/bad1" "data.classes=[normal]" > "$W/bad1.log" 2>&1; then fail "unlisted class accepted"; fi
grep -q "class folder '$W/pf/train/tumor'" "$W/bad1.log" || { cat "$W/bad1.log"; fail "unlisted class folder not named"; }
echo "garbage" > "$W/flat/tumor/broken.png"
if "$BIN" train "${ARGS[@]}" "data.patch_folders=$W/flat" "run_dir=$W/bad2" on_bad_slide=fail > "$W/bad2.log" 2>&1; then fail "unreadable image accepted"; fi
grep -q "cannot read image '$W/flat/tumor/broken.png'" "$W/bad2.log" || { cat "$W/bad2.log"; fail "unreadable image not named"; }
echo "patch folders OK"
