#!/usr/bin/env bash
# bench e2e_vs_pytorch: `mpirun -np 2 slidetrain train` against the Python stack it replaces -
# PyTorch DDP (gloo, 2 processes) fed by a DataLoader that reads patches with openslide-python
# (bench/e2e_vs_pytorch.py) - on the same patch lists, model (small_cnn), optimizer (SGD,
# momentum 0.9, weight decay 1e-4, lr 0.05), global batch (64) and augmentation (random flips only),
# with the same threads: each rank (each Python process) gets 1 compute thread and 1 reader.
# slidetrain runs twice per round, train.sync_batchnorm true (its default) and false; PyTorch 1.13
# has no SyncBatchNorm on the CPU, so its side uses plain BatchNorm.
#
# Steady state: the time between optimizer steps 5 and 85 on rank 0 (no epoch boundary in
# between: the cohort has ~17,500 train patches, 273 steps per epoch), as patches/s of the global
# batch. slidetrain's steps are timed by the arrival of its progress lines (train.log_every=5),
# Python's by its own clock. Each round runs the three back to back; the ratios are taken within
# a round and the median over the rounds is reported, as are the median rates (the machine may be
# shared: neighbours move single runs by 10-20 %). Prints the three figures and the ratios
# against the targets of docs/benchmarks.md; exit status 0 whatever they are.
#
# Usage: bench/e2e_vs_pytorch.sh [build dir] [rounds]     (default build, 5 rounds)
#   E2E_SLIDES=24 E2E_WIDTH=8192 E2E_HEIGHT=6144 size the cohort (cached in $TMPDIR).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"; ROUNDS="${2:-5}"
BIN="$BUILD/slidetrain"; PY=/usr/bin/python3
SLIDES="${E2E_SLIDES:-24}" WIDTH="${E2E_WIDTH:-8192}" HEIGHT="${E2E_HEIGHT:-6144}"
FIRST=5 LAST=85 STEPS=90 BATCH=64 NP=2
W="${TMPDIR:-/tmp}/slidetrain_bench_e2e_${SLIDES}_${WIDTH}x${HEIGHT}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
[[ -x "$BIN" ]] || { echo "e2e_vs_pytorch: $BIN missing (launch/setup.sh builds it)" >&2; exit 1; }

ARGS=(-c "$ROOT/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "synth.num_slides=$SLIDES" "synth.width=$WIDTH" "synth.height=$HEIGHT" tiling.export_csv=true)
if [[ ! -f "$W/ready" ]]; then
  rm -rf "$W" && mkdir -p "$W"
  echo "e2e_vs_pytorch: synthesising and tiling $SLIDES slides of ${WIDTH} x ${HEIGHT} into $W (once)"
  "$BIN" synth "${ARGS[@]}" > "$W/synth.log"
  "$BIN" tile "${ARGS[@]}" "run_dir=$W/tiles" > "$W/tile.log"
  touch "$W/ready"
fi
TRAIN=("${ARGS[@]}" model.name=small_cnn train.batch_size=$BATCH "train.max_steps=$STEPS"
       train.log_every=$FIRST train.progress=lines train.resume=none train.threads=1 data.workers=1
       optimizer.name=sgd optimizer.lr=0.05 optimizer.momentum=0.9 optimizer.weight_decay=0.0001
       augment.flips=true augment.rot90=false augment.brightness=0 augment.contrast=0
       augment.saturation=0 augment.hue=0 predict.viewer=false)

# Seconds between steps FIRST and LAST from "<t> <line>" stamps of slidetrain's progress lines
# ("epoch 1/1 [...] 5/273 ...") or Python's "step N t=T" lines.
span() {
  awk -v a=$FIRST -v b=$LAST '
    /^step [0-9]+ t=/ { split($0, f, /step | t=| loss/); if (f[2] == a) ta = f[3]; if (f[2] == b) tb = f[3]; next }
    / epoch [0-9]+\/[0-9]+ / { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/ && $(i-1) ~ /\]$/) {
        split($i, s, "/"); if (s[1] == a) ta = $1; if (s[1] == b) tb = $1 } }
    END { if (ta == "" || tb == "") exit 1; printf "%.6f", tb - ta }' "$1"
}
stamp() { "$PY" -u -c 'import sys, time
for line in sys.stdin: sys.stdout.write("%.6f %s" % (time.perf_counter(), line))'; }
rate() { awk -v s="$1" -v n=$(( (LAST - FIRST) * BATCH )) 'BEGIN { printf "%.1f", n / s }'; }

declare -A ALL=([sync]="" [plain]="" [python]="")
keep() { ALL[$1]+=" $2"; }
for ((r = 1; r <= ROUNDS; r++)); do
  for sbn in true false; do
    name=$([[ $sbn == true ]] && echo sync || echo plain)
    log="$W/round$r.$name.log"
    mpirun -np $NP --oversubscribe --bind-to none "$BIN" train "${TRAIN[@]}" "run_dir=$W/run_$name" \
      "train.sync_batchnorm=$sbn" 2>&1 | stamp > "$log" ||
      { tail -30 "$log"; echo "e2e_vs_pytorch: slidetrain train ($name) failed" >&2; exit 1; }
    v=$(rate "$(span "$log")") || { tail -30 "$log"; echo "e2e_vs_pytorch: no steps $FIRST/$LAST in $log" >&2; exit 1; }
    keep "$name" "$v"
    printf '  round %d: slidetrain, train.sync_batchnorm=%-5s %8.1f patches/s\n' "$r" "$sbn" "$v"
  done
  log="$W/round$r.python.log"
  mpirun -np $NP --oversubscribe --bind-to none "$PY" "$ROOT/bench/e2e_vs_pytorch.py" \
    --cohort "$W/c/cohort.csv" --patches "$W/tiles/patches" --batch $(( BATCH / NP )) --steps "$STEPS" \
    --threads 1 --workers 1 > "$log" 2>&1 ||
    { tail -30 "$log"; echo "e2e_vs_pytorch: the PyTorch pipeline failed" >&2; exit 1; }
  v=$(rate "$(span "$log")") || { tail -30 "$log"; echo "e2e_vs_pytorch: no steps $FIRST/$LAST in $log" >&2; exit 1; }
  keep python "$v"
  printf '  round %d: PyTorch DDP (gloo) + DataLoader + openslide-python    %8.1f patches/s\n' "$r" "$v"
done

# Median of a list; median over rounds of a per-round expression of the three lists.
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
per_round() {  # per_round AWK-EXPR (of s, p, t: this round's sync, plain, python rates)
  paste <(tr ' ' '\n' <<< "${ALL[sync]}" | awk 'NF') <(tr ' ' '\n' <<< "${ALL[plain]}" | awk 'NF') \
        <(tr ' ' '\n' <<< "${ALL[python]}" | awk 'NF') | awk "{s = \$1; p = \$2; t = \$3; print $1}" | median
}
echo "e2e_vs_pytorch: $NP ranks, small_cnn, global batch $BATCH, flips only, steps $FIRST-$LAST, median of $ROUNDS rounds"
printf 'slidetrain, SyncBatchNorm (default)  %8.1f patches/s\n' "$(median <<< "${ALL[sync]}")"
printf 'slidetrain, BatchNorm                %8.1f patches/s\n' "$(median <<< "${ALL[plain]}")"
printf 'PyTorch DDP, BatchNorm               %8.1f patches/s\n' "$(median <<< "${ALL[python]}")"
printf 'SyncBatchNorm vs PyTorch: %.2fx (target >= 1.3)\n' "$(per_round 's / t')"
printf 'SyncBatchNorm cost over BatchNorm: %.1f %% (target <= 10 %%)\n' "$(per_round '100 * (p / s - 1)')"
printf 'BatchNorm vs PyTorch: %.2fx (target >= 1.5)\n' "$(per_round 'p / t')"
