#!/usr/bin/env bash
# The weak-label comparison of docs/mil.md ("Measured"): on the 64-slide weak-label cohort of
# configs/weak.yaml (slide labels only, tumour in ~5 % of a tumour slide's tissue, slides that
# differ in stain, nuclei and benign look-alikes), patch pooling of a classifier trained on
# inherited labels (mean, max, top-k) against MIL on bags of patch features (ABMIL, CLAM-SB,
# TransMIL). Prints the table (held-out slide AUC with its bootstrap 95 % CI, wall time) and writes
# it to OUT/table.md and OUT/table.json.
#
# Usage: launch/mil_study.sh [OUT_DIR] [key=value ...]     (default OUT_DIR: weak_out)
#   NP=2 ranks (default 2); SLIDETRAIN_BIN=build/slidetrain. Extra key=value go to every command.
# About 12 minutes on 2 cores (docs/mil.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${SLIDETRAIN_BIN:-$ROOT/build/slidetrain}"
[[ -x "$BIN" ]] || { echo "mil_study: $BIN missing: build first (launch/setup.sh)" >&2; exit 1; }
OUT="${1:-weak_out}"; shift || true
NP="${NP:-2}"
mkdir -p "$OUT"; OUT="$(cd "$OUT" && pwd)"
C=(-c "$ROOT/configs/weak.yaml" "synth.out_dir=$OUT/cohort" "cohort=$OUT/cohort/cohort.csv"
   "cache_dir=$OUT/cache" "run_dir=$OUT/run" "features.out_dir=$OUT/features" "$@")
mpi() { "$ROOT/launch/mpirun.sh" "$NP" "$@"; }
T="$OUT/times.txt"; : > "$T"
stage() {  # stage NAME CMD...: runs it, logs to OUT/NAME.log, records its wall time
  local name="$1"; shift
  local t0; t0=$(date +%s.%N)
  echo "mil_study: $name"
  "$@" > "$OUT/$name.log" 2>&1 || { tail -30 "$OUT/$name.log"; echo "mil_study: $name failed" >&2; exit 1; }
  echo "$name $(echo "$(date +%s.%N) - $t0" | bc)" >> "$T"
}
stage synth "$BIN" synth "${C[@]}"
stage tile "$BIN" tile "${C[@]}"
stage train mpi train "${C[@]}" train.resume=none
stage predict "$BIN" predict "${C[@]}" predict.heatmaps=false
# A frozen encoder from elsewhere, as UNI or CONCH are for real cohorts (no network here): the same
# small CNN trained with patch annotations on a separate 16-slide cohort (other seed, the same
# slide variation), then used without its classifier.
E=(-c "$ROOT/configs/weak.yaml" seed=1001 "synth.out_dir=$OUT/encoder_cohort"
   "cohort=$OUT/encoder_cohort/cohort.csv" "cache_dir=$OUT/encoder_cache" "run_dir=$OUT/encoder"
   synth.num_slides=16 synth.tumor_tissue_share=0 synth.test_fraction=0 synth.val_fraction=0.125
   tiling.use_annotations=true "$@")
stage encoder_synth "$BIN" synth "${E[@]}"
stage encoder_tile "$BIN" tile "${E[@]}"
stage encoder_train mpi train "${E[@]}" train.resume=none
stage features mpi features "${C[@]}" "model.pretrained=$OUT/encoder/weights.pt"
for m in abmil clam_sb transmil; do
  stage "mil_$m" mpi mil "${C[@]}" "run_dir=$OUT/mil_$m" mil.model=$m mil.heatmaps=false
done
# For comparison: ABMIL on the features of the weak patch classifier itself.
stage features_weak mpi features "${C[@]}" "model.pretrained=$OUT/run/weights.pt" \
  "features.out_dir=$OUT/features_weak"
stage mil_abmil_weak mpi mil "${C[@]}" "run_dir=$OUT/mil_abmil_weak" "features.out_dir=$OUT/features_weak" \
  mil.model=abmil mil.heatmaps=false

"${PYTHON:-python3}" - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
t = dict((l.split()[0], float(l.split()[1])) for l in open(os.path.join(out, "times.txt")))
sm = json.load(open(os.path.join(out, "run", "slide_metrics.json")))
rows = []
def ci(a):
    return "%.3f [%.3f, %.3f]" % (a["auc"], a["auc_lo"], a["auc_hi"])
patch = t["tile"] + t["train"] + t["predict"]
for name, label in (("mean", "mean pooling"), ("max", "max pooling"), ("topk", "top-k pooling")):
    m = sm["methods"][name]
    rows.append({"method": label + " (patch classifier, inherited labels)", "auc": m["auc"],
                 "auc_lo": m["auc_lo"], "auc_hi": m["auc_hi"], "accuracy": m["accuracy"], "seconds": patch})
encoder = t["encoder_synth"] + t["encoder_tile"] + t["encoder_train"]
for name, label, feat in (("abmil", "ABMIL (gated attention)", "features"), ("clam_sb", "CLAM-SB", "features"),
                          ("transmil", "TransMIL", "features"),
                          ("abmil_weak", "ABMIL on the weak patch classifier's features", "features_weak")):
    s = json.load(open(os.path.join(out, "mil_" + name, "mil", "summary.json")))
    before = patch if feat == "features_weak" else t["tile"] + encoder
    rows.append({"method": label, "auc": s["auc"], "auc_lo": s["auc_lo"], "auc_hi": s["auc_hi"],
                 "accuracy": s["accuracy"], "seconds": before + t[feat] + t["mil_" + name]})
lines = ["| slide label from | test AUC [95 % CI] | test accuracy | wall time (s) |", "|---|---|---|---|"]
for r in rows:
    lines.append("| %s | %s | %.3f | %.0f |" % (r["method"], ci(r), r["accuracy"], r["seconds"]))
lines.append("")
lines.append("wall time: every stage the row needs after synth (tile, train, predict / encoder, features, mil); "
             "all stages: %.0f s" % sum(t.values()))
table = "\n".join(lines)
print(table)
open(os.path.join(out, "table.md"), "w").write(table + "\n")
json.dump({"rows": rows, "stage_seconds": t}, open(os.path.join(out, "table.json"), "w"), indent=2)
PY
