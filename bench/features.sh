#!/usr/bin/env bash
# bench features: `slidetrain features` against the Python pipeline users write today
# (openslide-python reads in a torch DataLoader + the same TorchScript encoder in PyTorch + h5py,
# bench/features.py), on 1 and 2 ranks with the same threads: each rank (each Python process)
# gets 1 compute thread and 1 reader (DataLoader worker). Prints patches/s of both and the ratio.
# Usage: bench/features.sh [build dir] [slides]     (default build, 8 slides of 3072 x 2048)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"; SLIDES="${2:-8}"
BIN="$BUILD/slidetrain"; PY=/usr/bin/python3
W="${TMPDIR:-/tmp}/slidetrain_bench_features"; rm -rf "$W"; mkdir -p "$W"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
ARGS=(-c "$ROOT/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" "synth.num_slides=$SLIDES" synth.width=3072 synth.height=2048 tiling.level=0
      tiling.patch_size=64 train.threads=1 data.workers=1 features.batch_size=64
      "features.encoder=$W/enc.pt")
"$BIN" synth "${ARGS[@]}" > /dev/null
"$BIN" tile "${ARGS[@]}" > /dev/null
"$PY" "$ROOT/tests/python/features_parity.py" encoder "$W/enc.pt"
rate() { awk '{for (i = 1; i < NF; i++) if ($(i+1) == "patches/s") print $i}' | tail -1; }
export W
declare -A ST PYR
for np in 1 2; do
  rm -rf "$W/run/features"
  ST[$np]=$(mpirun -np $np --oversubscribe --bind-to none "$BIN" features "${ARGS[@]}" |
    grep "wrote" | sed 's/.*(\([0-9.]*\) patches\/s.*/\1/')
  [[ $np == 1 ]] && { cp -r "$W/run/features" "$W/lists"
    awk -F, 'NR > 1 {print $1, ENVIRON["W"] "/c/" $2}' W="$W" "$W/c/cohort.csv" > "$W/lists/slides.txt"; }
  pids=()
  for ((s = 0; s < np; s++)); do
    "$PY" "$ROOT/bench/features.py" "$W/lists" "$W/py$np" "$W/enc.pt" 1 1 64 $s $np > "$W/py$np.$s.log" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  # patches over the slowest process's time, as slidetrain reports (interpreter start excluded)
  PYR[$np]=$(cat "$W"/py$np.*.log | awk '{n += $2; if ($4 > t) t = $4} END {printf "%.0f", n / t}')
  printf 'np %d: slidetrain %s patches/s, Python (openslide + DataLoader + torch) %s patches/s: %.2fx\n' \
    $np "${ST[$np]}" "${PYR[$np]}" "$(awk -v a="${ST[$np]}" -v b="${PYR[$np]}" 'BEGIN {print a / b}')"
done
