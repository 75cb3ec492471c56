#!/usr/bin/env bash
# predict applies a trained model to slides nobody has labelled: a cohort CSV without a label
# column (or with empty labels) works for predict; every slide gets its outputs, the class
# names come from the training run's config.yaml, and metrics cover only the labelled slides,
# saying how many had none. Training still requires labels.
# Usage: predict_unlabelled_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cache_dir=$W/cache" "run_dir=$W/run"
      synth.num_slides=4 synth.width=1536 synth.height=1024 synth.test_fraction=0.5
      synth.val_fraction=0
      train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=64 train.threads=2)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$BIN" train "${ARGS[@]}" "cohort=$W/c/cohort.csv" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train"; }
# External slides: no label column, no split column.
awk -F, 'NR==1{print "slide_id,path"} NR>1{print $1 "," $2}' "$W/c/cohort.csv" > "$W/c/external.csv"
"$BIN" predict "${ARGS[@]}" "cohort=$W/c/external.csv" predict.split=all > "$W/p1.log" 2>&1 ||
  { cat "$W/p1.log"; fail "predict on an unlabelled cohort"; }
grep -q "4 of 4 slides have no label" "$W/p1.log" || { cat "$W/p1.log"; fail "unlabelled count"; }
grep -q "no slide with a label and a score: no metrics" "$W/p1.log" || { cat "$W/p1.log"; fail "metrics line"; }
[[ $(wc -l < "$W/run/slides.csv") -eq 5 ]] || { cat "$W/run/slides.csv"; fail "slides.csv should list all 4 slides"; }
grep -qE '^synth_000,,[0-9]+,' "$W/run/slides.csv" || { cat "$W/run/slides.csv"; fail "empty label column"; }
# Mixed: one slide labelled, three not: the metrics cover the labelled one.
awk -F, 'NR==1{print "slide_id,path,label"} NR==2{print $1 "," $2 "," $3} NR>2{print $1 "," $2 ","}' \
  "$W/c/cohort.csv" > "$W/c/mixed.csv"
"$BIN" predict "${ARGS[@]}" "cohort=$W/c/mixed.csv" predict.split=all > "$W/p2.log" 2>&1 ||
  { cat "$W/p2.log"; fail "predict on a partly labelled cohort"; }
grep -q "3 of 4 slides have no label: .* the metrics cover the 1 labelled slide" "$W/p2.log" ||
  { cat "$W/p2.log"; fail "mixed summary"; }
grep -q "held-out slide-level accuracy (topk pooling, 1 slides)" "$W/p2.log" || { cat "$W/p2.log"; fail "metrics over 1 slide"; }
# Without the run's config.yaml and data.classes, the class names are unknown: a clear error.
if "$BIN" predict "${ARGS[@]}" "cohort=$W/c/external.csv" predict.split=all "run_dir=$W/elsewhere" \
     "predict.checkpoint=$W/run/checkpoints/last.pt" > "$W/p3.log" 2>&1; then
  fail "predict without class names should fail"
fi
grep -q "have no label, and the class names of the model are unknown. HINT: set data.classes" "$W/p3.log" ||
  { cat "$W/p3.log"; fail "error message"; }
# Training still needs labels.
if "$BIN" train "${ARGS[@]}" "cohort=$W/c/mixed.csv" "run_dir=$W/run2" > "$W/t2.log" 2>&1; then
  fail "train accepted unlabelled slides"
fi
grep -q "column 'label' is empty" "$W/t2.log" || { cat "$W/t2.log"; fail "train error"; }
echo "predict on unlabelled slides OK"
