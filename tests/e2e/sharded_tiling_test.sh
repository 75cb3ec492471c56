#!/usr/bin/env bash
# Tiling inside `train` is shared by the ranks and waits without the collective timeout (issue 13,
# item 1). With an empty cache, train.timeout_s=2 and one slide that takes 5 s to tile (its
# annotation file is a FIFO fed after 5 s), `mpirun -np 2 ... train` must tile (each rank its
# share: both print progress lines), wait for each other past the 2 s timeout, and write the
# same cache files a one-process `tile` writes. Before, rank 0 tiled everything while rank 1 sat
# in a barrier with the 2 s timeout: the job aborted. A slide that fails (on_bad_slide: fail) on
# one rank ends every rank with its name instead of leaving the others waiting.
# Usage: sharded_tiling_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$(realpath "$1")"; SRC="$2"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" synth.num_slides=8
      synth.val_fraction=0 synth.test_fraction=0.5
      tiling.threads=1 train.max_steps=2 train.batch_size=16 train.progress=none train.threads=1
      data.workers=1 train.timeout_s=2)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$BIN" tile "${ARGS[@]}" "cache_dir=$W/ref_cache" > "$W/tile.log" 2>&1 || { cat "$W/tile.log"; fail "tile"; }
# One train slide's annotation file becomes a FIFO that gives its content only after 5 s: tiling
# that slide takes 5 s on whichever rank tiles it, longer than train.timeout_s.
slow=$(awk -F, 'NR > 1 && $4 == "train" {print $1; exit}' "$W/c/cohort.csv")
ann="$W/c/annotations/$slow.geojson"
cp "$ann" "$W/saved.geojson"; rm "$ann"; mkfifo "$ann"
( sleep 5; cp "$W/saved.geojson" "$W/plain.geojson"
  exec 3> "$ann"                     # the tiling rank is blocked opening the FIFO: pairs now
  mv "$W/plain.geojson" "$ann"       # later reads (the merge) find a plain file
  cat "$W/saved.geojson" >&3 ) &
writer=$!
SECONDS=0
mpirun -np 2 --oversubscribe --bind-to none "$BIN" train "${ARGS[@]}" "cache_dir=$W/cache" "run_dir=$W/run" \
  > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train with tiling on 2 ranks (timeout 2 s)"; }
secs=$SECONDS
wait "$writer" || true
[[ $secs -ge 5 ]] || fail "tiling took ${secs} s: the slow slide was not read through its FIFO"
grep -q "^rank 0/2 \[" "$W/train.log" && grep -q "^rank 1/2 \[" "$W/train.log" ||
  { cat "$W/train.log"; fail "both ranks should tile their share"; }
# The cache files equal those of one process tiling the whole cohort (train tiles the train
# and val slides only).
n=0
for f in $(cd "$W/cache" && find . -type f); do
  cmp -s "$W/cache/$f" "$W/ref_cache/$f" || fail "cache file $f differs from the one-process tile's"
  n=$((n + 1))
done
[[ $n -gt 0 ]] || fail "train wrote no cache files"
echo "sharded tiling: 2 ranks, ${secs} s with a 2 s collective timeout, $n cache files identical to tile's"

# A bad slide on one rank's share, on_bad_slide: fail: every rank stops, naming it.
cp "$W/c/cohort.csv" "$W/c/bad.csv"  # slide paths are relative to the cohort file
echo "broken,$SRC/../shared/data/slides/negative/broken.svs,tumor,train" >> "$W/c/bad.csv"
rc=0
timeout 120 mpirun -np 2 --oversubscribe --bind-to none "$BIN" train "${ARGS[@]}" "cohort=$W/c/bad.csv" \
  "cache_dir=$W/cache2" "run_dir=$W/run2" on_bad_slide=fail > "$W/bad.log" 2>&1 || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || { cat "$W/bad.log"; fail "a failing slide: exit $rc (124: hung)"; }
grep -q "broken.svs" "$W/bad.log" || { cat "$W/bad.log"; fail "the failing slide is not named"; }
echo "failing slide on one rank: every rank stopped (exit $rc), slide named"
