#!/usr/bin/env bash
# The seed papers' studies as one command each (docs/experiments.md):
#   launch/experiment.sh NAME [--quick] [--check] [--out DIR] [--cohort CSV] [key=value ...]
# NAME is a folder of configs/experiments/: base.yaml (the study's config) and study.txt (its
# variants; the format is described in docs/experiments.md). The script generates a synthetic
# cohort (unless --cohort names a real one), runs the optional pre-training, then every variant
# (`slidetrain cv`, or `train` + `predict`), and ends with `slidetrain compare` over the variants:
# OUT/compare/compare.html and compare.csv. Finished variants are skipped on a rerun (their
# done-marker holds the exact command), so an interrupted study resumes where it stopped.
#   --quick    the study's small profile (synthetic cohort, a few minutes on 2 cores)
#   --check    only validate every config the study would run (`slidetrain config`), run nothing
#   --out DIR  output folder (default experiments_out/NAME, or NAME-quick with --quick)
#   --cohort CSV  a cohort of your own instead of the synthetic one
#   NP=N       ranks per run (default 1; each run goes through launch/mpirun.sh when N > 1)
#   SLIDETRAIN_BIN  the binary (default build/slidetrain)
#   EXPERIMENTS_DIR the folder of studies (default configs/experiments): your own studies
# Extra key=value arguments go to every command after the study's own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SLIDETRAIN_BIN:-$ROOT/build/slidetrain}"
NP="${NP:-1}"
usage() { sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "experiment: error: $*" >&2; exit 1; }

NAME=""; QUICK=0; CHECK=0; OUT=""; COHORT=""; EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --check) CHECK=1 ;;
    --out) [[ $# -ge 2 ]] || usage; OUT="$2"; shift ;;
    --cohort) [[ $# -ge 2 ]] || usage; COHORT="$2"; shift ;;
    -h|--help) usage ;;
    -*) echo "experiment: unknown option $1" >&2; usage ;;
    *=*) EXTRA+=("$1") ;;
    *) [[ -z "$NAME" ]] || usage; NAME="$1" ;;
  esac
  shift
done
[[ -n "$NAME" ]] || usage
EXPERIMENTS_DIR="${EXPERIMENTS_DIR:-$ROOT/configs/experiments}"
DIR="$EXPERIMENTS_DIR/$NAME"
if [[ ! -f "$DIR/study.txt" ]]; then
  echo "experiment: error: no study '$NAME' ($DIR/study.txt missing); studies:" >&2
  for s in "$EXPERIMENTS_DIR"/*/study.txt; do echo "  $(basename "$(dirname "$s")")" >&2; done
  exit 1
fi
[[ -f "$DIR/base.yaml" ]] || die "$DIR/base.yaml missing"
[[ -x "$BIN" ]] || die "$BIN not built (run launch/setup.sh, or set SLIDETRAIN_BIN)"
[[ -n "$OUT" ]] || OUT="experiments_out/$NAME$([[ $QUICK == 1 ]] && echo -quick)"
mkdir -p "$OUT"; OUT="$(cd "$OUT" && pwd)"
[[ -z "$COHORT" || -f "$COHORT" ]] || die "--cohort $COHORT: no such file"
[[ -z "$COHORT" ]] || COHORT="$(cd "$(dirname "$COHORT")" && pwd)/$(basename "$COHORT")"

# --- study.txt: one directive per line, '#' starts a comment ------------------------------------
COMMAND=cv; METRIC=""; ALL=(); QUICKARGS=(); PRETRAIN=(); HAVE_PRETRAIN=0; LABELS=(); VARIANTS=()
lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
  lineno=$((lineno + 1))
  line="${line%%#*}"
  read -r -a words <<< "$line" || true
  [[ ${#words[@]} -gt 0 ]] || continue
  word="${words[0]}"; rest=("${words[@]:1}")
  where="$DIR/study.txt:$lineno"
  case "$word" in
    command) [[ ${#rest[@]} == 1 && ( "${rest[0]}" == cv || "${rest[0]}" == train ) ]] ||
               die "$where: 'command' takes cv or train"; COMMAND="${rest[0]}" ;;
    metric) [[ ${#rest[@]} == 1 ]] || die "$where: 'metric' takes one name"; METRIC="${rest[0]}" ;;
    all) ALL+=("${rest[@]}") ;;
    quick) QUICKARGS+=("${rest[@]}") ;;
    pretrain) HAVE_PRETRAIN=1; PRETRAIN+=("${rest[@]}") ;;
    variant) [[ ${#rest[@]} -ge 1 && "${rest[0]}" =~ ^[A-Za-z0-9_.-]+$ ]] ||
               die "$where: 'variant' needs a label of letters, digits, . _ -"
             for l in "${LABELS[@]}"; do [[ "$l" != "${rest[0]}" ]] || die "$where: variant ${rest[0]} twice"; done
             LABELS+=("${rest[0]}"); VARIANTS+=("${rest[*]:1}") ;;
    *) die "$where: unknown directive '$word' (command, metric, all, quick, pretrain, variant)" ;;
  esac
  for kv in "${rest[@]}"; do
    [[ "$word" == variant && "$kv" == "${rest[0]}" ]] && continue
    [[ "$word" == command || "$word" == metric || "$kv" == *=* ]] || die "$where: '$kv' is not key=value"
  done
done < "$DIR/study.txt"
[[ ${#LABELS[@]} -gt 0 ]] || die "$DIR/study.txt has no variant"

subst() {  # @OUT@ -> the output folder, @PRETRAINED@ -> the pre-trained weights
  local a
  for a in "$@"; do a="${a//@OUT@/$OUT}"; printf '%s\n' "${a//@PRETRAINED@/$OUT/pretrain/run/weights.pt}"; done
}
# The configuration of one command: base.yaml, paths under OUT, the study's lines, the user's.
args() {  # args RUN_DIR [key=value ...] -> the array A
  local run="$1"; shift
  local q=(); [[ $QUICK == 1 ]] && q=("${QUICKARGS[@]}")
  local cohort=("synth.out_dir=$OUT/cohort" "cohort=$OUT/cohort/cohort.csv")
  [[ -z "$COHORT" ]] || cohort=("cohort=$COHORT")
  mapfile -t A < <(subst -c "$DIR/base.yaml" "${cohort[@]}" "cache_dir=$OUT/cache" "run_dir=$run" \
                         "${ALL[@]}" "${q[@]}" "$@" "${EXTRA[@]}")
}
run() {  # run COMMAND ARGS...: through mpirun when NP > 1 (synth, tile and predict run alone)
  local cmd="$1"; shift
  if [[ $NP -gt 1 && ( "$cmd" == train || "$cmd" == cv ) ]]; then
    "$ROOT/launch/mpirun.sh" "$NP" "$cmd" "$@"
  else
    "$BIN" "$cmd" "$@"
  fi
}
LOG="$OUT/experiment.log"
step() {  # step NAME DONE_MARKER RUN_DIR|- COMMAND ARGS...: skipped when the marker holds the same command
  local name="$1" marker="$2" rundir="$3"; shift 3
  local want; want="$(printf '%q ' "$@")"
  if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then echo "  $name: done before, kept"; return; fi
  if [[ "$rundir" != - ]]; then
    # A run started with the same command resumes (cv and train resume their checkpoints); one
    # started with another command (the study or its arguments changed) is moved aside, not lost.
    if [[ -e "$rundir" && "$(cat "$marker.started" 2>/dev/null)" != "$want" ]]; then
      local aside; aside="$rundir.replaced-$(date +%Y%m%d-%H%M%S)"
      mv "$rundir" "$aside"
      echo "  $name: its command changed; the earlier run is kept in $aside"
    fi
    mkdir -p "$rundir"
    printf '%s' "$want" > "$marker.started"
  fi
  local t0; t0=$(date +%s)
  echo "  $name ..."
  if ! "$@" > "$OUT/logs/$name.log" 2>&1; then
    tail -25 "$OUT/logs/$name.log" >&2
    die "$name failed (log: $OUT/logs/$name.log)"
  fi
  printf '%s' "$want" > "$marker"
  echo "  $name: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
}

if [[ $CHECK == 1 ]]; then  # every config the study would run must validate
  n=0
  check() {
    "$BIN" config "$@" > /dev/null 2> "$OUT/check.err" || { cat "$OUT/check.err" >&2; die "$NAME: $CHECKING: config invalid (above)"; }
    n=$((n + 1))
  }
  CHECKING=synth; args "$OUT/check"; check "${A[@]}"
  if [[ $HAVE_PRETRAIN == 1 ]]; then
    CHECKING=pretrain; args "$OUT/pretrain/run" "${PRETRAIN[@]}"; check "${A[@]}"
  fi
  for i in "${!LABELS[@]}"; do
    CHECKING="variant ${LABELS[$i]}"; read -r -a v <<< "${VARIANTS[$i]}"
    args "$OUT/runs/${LABELS[$i]}" "${v[@]}"; check "${A[@]}"
  done
  echo "experiment $NAME$([[ $QUICK == 1 ]] && echo ' --quick'): $n configs valid"
  exit 0
fi

mkdir -p "$OUT/logs" "$OUT/runs"
start=$(date +%s)
echo "experiment $NAME$([[ $QUICK == 1 ]] && echo ' (quick)'): $COMMAND over ${#LABELS[@]} variants -> $OUT" | tee -a "$LOG"
if [[ -z "$COHORT" ]]; then
  args "$OUT/cohort"
  step synth "$OUT/cohort/.done" - "$BIN" synth "${A[@]}"
fi
if [[ $HAVE_PRETRAIN == 1 ]]; then
  # Pre-training: a second synthetic cohort (its own seed; the study's pretrain line says more),
  # trained as configured; the variants load its weights.pt through @PRETRAINED@.
  mkdir -p "$OUT/pretrain"
  args "$OUT/pretrain/run" "synth.out_dir=$OUT/pretrain/cohort" "cohort=$OUT/pretrain/cohort/cohort.csv" \
       "cache_dir=$OUT/pretrain/cache" "${PRETRAIN[@]}"
  step pretrain_synth "$OUT/pretrain/cohort/.done" - "$BIN" synth "${A[@]}"
  step pretrain "$OUT/pretrain/.done" "$OUT/pretrain/run" run train "${A[@]}"
fi
COMPARE=()
for i in "${!LABELS[@]}"; do
  label="${LABELS[$i]}"; read -r -a v <<< "${VARIANTS[$i]}"
  args "$OUT/runs/$label" "${v[@]}"
  if [[ "$COMMAND" == cv ]]; then
    step "$label" "$OUT/runs/$label.done" "$OUT/runs/$label" run cv "${A[@]}"
  else
    step "$label" "$OUT/runs/$label.train.done" "$OUT/runs/$label" run train "${A[@]}"
    step "$label.predict" "$OUT/runs/$label.done" - "$BIN" predict "${A[@]}"
  fi
  COMPARE+=("$label=$OUT/runs/$label")
done
M=(); [[ -z "$METRIC" ]] || M=(--metric "$METRIC")
"$BIN" compare --out "$OUT/compare" "${M[@]}" "${COMPARE[@]}" > "$OUT/logs/compare.log" 2>&1 ||
  { cat "$OUT/logs/compare.log" >&2; die "compare failed"; }
echo "experiment $NAME finished in $(( $(date +%s) - start )) s: $OUT/compare/compare.html, compare.csv" | tee -a "$LOG"
