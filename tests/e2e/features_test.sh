#!/usr/bin/env bash
# `slidetrain features` end to end (issue 15): on a synthetic cohort under mpirun -np 2 and on the
# real CMU-1 Aperio slide, the HDF5 files are read with h5py and each slide's features compared to
# the same encoder run in PyTorch on the same patches re-read with openslide-python (max abs
# difference <= 1e-4): a TorchScript encoder and a zoo model (small_cnn) with trained weights.
# A rerun skips complete files, a changed setting or a truncated file is rebuilt, and a bad
# encoder file is refused naming features.encoder and the file. `slidetrain mil` then trains on
# the real slide's features (4b).
# Usage: features_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$(realpath "$1")"; SRC="$(realpath "$2")"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY="${SLIDETRAIN_TORCH_PYTHON:-/usr/bin/python3}"
PARITY="$SRC/tests/python/features_parity.py"
fail() { echo "FAIL: $*" >&2; exit 1; }
MEAN=0.485,0.456,0.406; STD=0.229,0.224,0.225
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=4 synth.width=1536 synth.height=1024 tiling.level=0
      tiling.patch_size=64 train.threads=1 data.workers=1 features.batch_size=50)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$PY" "$PARITY" encoder "$W/enc.pt"

# 1. TorchScript encoder, 2 ranks: one file per slide, parity with PyTorch.
mpirun -np 2 --oversubscribe --bind-to none "$BIN" features "${ARGS[@]}" "features.encoder=$W/enc.pt" \
  > "$W/f1.log" 2>&1 || { cat "$W/f1.log"; fail "features on 2 ranks"; }
cat "$W/f1.log"
grep -q "wrote 4 slide file(s), 0 already up to date" "$W/f1.log" || fail "expected 4 files written"
[[ $(ls "$W/run/features"/*.h5 | wc -l) -eq 4 ]] || fail "expected 4 .h5 files"
ls "$W/run/features" | grep -q tmp && fail "a temporary file was left behind"
while IFS=, read -r id path _; do
  [[ $id == slide_id ]] && continue
  "$PY" "$PARITY" check "$W/run/features/$id.h5" "$W/c/$path" "$W/enc.pt" $MEAN $STD 64 ||
    fail "features of $id differ from PyTorch's"
done < "$W/c/cohort.csv"

# 2. A rerun writes nothing; float16 (another fingerprint) rebuilds every file; a truncated file
#    is rebuilt on the next run.
"$BIN" features "${ARGS[@]}" "features.encoder=$W/enc.pt" > "$W/f2.log" 2>&1 || { cat "$W/f2.log"; fail "rerun"; }
grep -q "wrote 0 slide file(s), 4 already up to date" "$W/f2.log" || { cat "$W/f2.log"; fail "rerun should skip"; }
"$BIN" features "${ARGS[@]}" "features.encoder=$W/enc.pt" features.dtype=float16 > "$W/f3.log" 2>&1 ||
  { cat "$W/f3.log"; fail "float16"; }
grep -q "wrote 4 slide file(s), 0 already up to date" "$W/f3.log" || { cat "$W/f3.log"; fail "float16 should rebuild"; }
one=$(ls "$W/run/features"/*.h5 | head -1)
"$PY" -c "import h5py,sys; assert h5py.File(sys.argv[1])['features'].dtype == 'float16'" "$one" ||
  fail "features.dtype=float16 not stored as float16"
head -c 2000 "$one" > "$W/cut" && mv "$W/cut" "$one"
"$BIN" features "${ARGS[@]}" "features.encoder=$W/enc.pt" features.dtype=float16 > "$W/f4.log" 2>&1 ||
  { cat "$W/f4.log"; fail "rerun after truncation"; }
grep -q "wrote 1 slide file(s), 3 already up to date" "$W/f4.log" || { cat "$W/f4.log"; fail "truncated file not rebuilt"; }

# 3. The zoo model with trained weights (train writes weights.pt), classifier removed.
"$BIN" train "${ARGS[@]}" train.max_steps=3 train.batch_size=16 train.progress=none > /dev/null
"$BIN" features "${ARGS[@]}" "model.pretrained=$W/run/weights.pt" "features.out_dir=$W/zoo" > "$W/f5.log" 2>&1 ||
  { cat "$W/f5.log"; fail "zoo encoder"; }
id=$(awk -F, 'NR == 2 {print $1}' "$W/c/cohort.csv"); path=$(awk -F, 'NR == 2 {print $2}' "$W/c/cohort.csv")
"$PY" "$PARITY" check "$W/zoo/$id.h5" "$W/c/$path" "zoo:small_cnn:$W/run/weights.pt" $MEAN $STD 64 ||
  fail "zoo-model features differ from PyTorch's"

# 4. The real Aperio slide (CMU-1-Small-Region.svs, 0.499 um/px), 224-px patches at level 0.
SLIDES="$SRC/../shared/data/slides"
printf 'slide_id,path,label,split\ncmu1,%s,tumor,train\nsmall,%s,normal,train\n' \
  "$SLIDES/CMU-1-Small-Region.svs" "$SLIDES/openslide-python-small.svs" > "$W/real.csv"
"$BIN" features -c "$SRC/configs/demo.yaml" "cohort=$W/real.csv" "cache_dir=$W/rcache" "run_dir=$W/real" \
  tiling.level=0 tiling.patch_size=224 "features.encoder=$W/enc.pt" train.threads=1 > "$W/f6.log" 2>&1 ||
  { cat "$W/f6.log"; fail "features on the real slides"; }
cat "$W/f6.log"
"$PY" "$PARITY" check "$W/real/features/cmu1.h5" "$SLIDES/CMU-1-Small-Region.svs" "$W/enc.pt" $MEAN $STD 32 ||
  fail "CMU-1 features differ from PyTorch's"

# 4b. MIL on a real slide: CMU-1 under two ids in train (one per label) and two in test (its
#     other real neighbours have no tissue patch at 224 px); features, then abmil trains and
#     scores the two test slides with attention heatmaps over the real thumbnail.
C1="$SLIDES/CMU-1-Small-Region.svs"
printf 'slide_id,path,label,split\ncmu1,%s,tumor,train\ncmu1_n,%s,normal,train\ncmu1_t,%s,tumor,test\ncmu1_tn,%s,normal,test\n' \
  "$C1" "$C1" "$C1" "$C1" > "$W/real2.csv"
R2=(-c "$SRC/configs/demo.yaml" "cohort=$W/real2.csv" "cache_dir=$W/r2cache" "run_dir=$W/real2" tiling.level=0
    tiling.patch_size=224 "features.encoder=$W/enc.pt" train.threads=1 mil.epochs=2 mil.hidden=16
    mil.bootstrap=50 predict.heatmap_size=256)
"$BIN" features "${R2[@]}" > "$W/f7.log" 2>&1 || { cat "$W/f7.log"; fail "features on the real slides (mil cohort)"; }
"$BIN" mil "${R2[@]}" > "$W/m7.log" 2>&1 || { cat "$W/m7.log"; fail "mil on the real slides"; }
[[ $(wc -l < "$W/real2/mil/slides.csv") -eq 3 ]] || { cat "$W/real2/mil/slides.csv"; fail "mil: 2 real test slides expected"; }
for id in cmu1_t cmu1_tn; do
  grep -q "^$id,.*,[0-9]" "$W/real2/mil/slides.csv" || fail "mil: $id not scored"
  [[ -s "$W/real2/mil/heatmaps/$id.png" ]] || fail "mil: no attention heatmap for $id"
done

# 5. Bad encoders are refused naming the key and the file.
echo "not a module" > "$W/bad.pt"
"$PY" "$PARITY" wrong_output "$W/wrong.pt"
for enc in "$W/bad.pt" "$W/wrong.pt" "$W/missing.pt"; do
  if "$BIN" features "${ARGS[@]}" "features.encoder=$enc" "features.out_dir=$W/bad" > "$W/bad.log" 2>&1; then
    fail "features accepted the encoder $enc"
  fi
  grep -q "features.encoder: $enc" "$W/bad.log" || { cat "$W/bad.log"; fail "error does not name features.encoder and $enc"; }
done
echo "features OK"
