#!/usr/bin/env bash
# cv resumes a fold only when it is the same experiment: more epochs continue each fold from its
# last.pt; a changed cohort (here: one slide relabelled, which moves slides between folds and
# labels) is refused with the differences named, instead of training on from another fold's
# weights - whose training slides may be this fold's validation slides.
# Usage: cv_resume_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/cv" synth.num_slides=6 synth.width=1024 synth.height=768 synth.test_fraction=0
      synth.val_fraction=0
      train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=32 train.threads=1
      data.workers=1 data.max_patches_per_slide=32 cv.folds=2)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$BIN" cv "${ARGS[@]}" > "$W/first.log" 2>&1 || { cat "$W/first.log"; fail "first cv"; }
"$BIN" cv "${ARGS[@]}" train.epochs=2 > "$W/more.log" 2>&1 || { cat "$W/more.log"; fail "cv with more epochs"; }
[[ $(grep -c "resumed from .*fold_" "$W/more.log") -eq 2 ]] || { cat "$W/more.log"; fail "both folds should resume"; }
# Relabel one slide: the folds' slide lists change.
awk -F, 'BEGIN{OFS=","} NR==2{ $3 = ($3 == "tumor" ? "normal" : "tumor") } {print}' "$W/c/cohort.csv" > "$W/c/relabelled.csv"
if "$BIN" cv "${ARGS[@]}" "cohort=$W/c/relabelled.csv" train.epochs=3 > "$W/changed.log" 2>&1; then
  cat "$W/changed.log"; fail "cv resumed a fold of another experiment"
fi
grep -q "belongs to another experiment" "$W/changed.log" || { cat "$W/changed.log"; fail "no refusal message"; }
grep -q "slides of train" "$W/changed.log" || { cat "$W/changed.log"; fail "the differing slides are not named"; }
echo "cv resume OK"
