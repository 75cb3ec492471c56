#!/usr/bin/env bash
# End to end on a tiny synthetic cohort: synth -> tile (twice: the second reads the cache) ->
# mpirun -np 2 train -> predict, checking the run directory's files.
# Usage: pipeline_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$1"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=4 synth.width=1536 synth.height=1024 synth.test_fraction=0.5
      synth.val_fraction=0
      train.epochs=1 train.batch_size=16 tiling.level=0 tiling.patch_size=64 predict.topk=3)
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" synth "${ARGS[@]}"
[[ -f "$W/c/cohort.csv" ]] || fail "no cohort.csv"
[[ $(ls "$W/c/annotations" | wc -l) -ge 1 ]] || fail "no annotations"
"$BIN" tile "${ARGS[@]}" | tee "$W/tile1.log"
grep -q "tiled 4/4 slides (0 from cache)" "$W/tile1.log" || fail "first tile run"
"$BIN" tile "${ARGS[@]}" | tee "$W/tile2.log"
grep -q "tiled 4/4 slides (4 from cache)" "$W/tile2.log" || fail "second tile run did not reuse the cache"

mpirun -np 2 --oversubscribe "$BIN" train "${ARGS[@]}" | tee "$W/train.log"
grep -q "epoch 1/1" "$W/train.log" || fail "no epoch line"
for f in config.yaml metrics.jsonl checkpoints/last.pt weights.pt; do
  [[ -s "$W/run/$f" ]] || fail "run dir lacks $f"
done
# The resolved config reproduces the run: every setting, overrides included.
grep -q "batch_size: 16" "$W/run/config.yaml" || fail "config.yaml lacks the overridden batch size"
"$BIN" config -c "$W/run/config.yaml" > "$W/config_again.yaml"
diff -q "$W/run/config.yaml" "$W/config_again.yaml" || fail "config.yaml does not reproduce itself"
"$BIN" predict "${ARGS[@]}" | tee "$W/predict.log"
grep -q "held-out slide-level accuracy" "$W/predict.log" || fail "no accuracy line"
[[ $(wc -l < "$W/run/slides.csv") -eq 3 ]] || fail "slides.csv should hold 2 test slides"
[[ -s "$W/run/patches.csv" ]] || fail "no patches.csv"
[[ -s "$W/run/report.html" ]] || fail "no report.html"
[[ $(ls "$W/run/heatmaps"/*.png | wc -l) -eq 2 ]] || fail "expected 2 heatmaps"
echo "pipeline OK"
