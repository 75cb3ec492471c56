#!/usr/bin/env bash
# `slidetrain mil` end to end (issue 15): features of a small synthetic cohort, then
# (with part 1, predict.viewer: each test slide's viewer page with the attention as its overlay,
# opened in headless Chromium)
#  1. world-size invariance: abmil with dropout on 1 and on 2 ranks, the same global bag batch
#     (mil.batch_bags=4): the weights agree to 1e-4;
#  2. every model (mean_pool, max_pool, abmil, clam_sb, transmil) trains on 2 ranks and writes
#     slides.csv, summary.json, heatmaps and report.html; clam_sb's unused instance classifier
#     does not stall the gradient sync;
#  3. resume: a second run with more epochs continues from checkpoints/last.pt; a run that stopped
#     early stays stopped on a rerun;
#  4. patient-level bags (mil.label_level=patient) from a patient_id column;
#  5. bad feature files (missing, truncated, another D, an empty bag) stop the run naming the file,
#     or with on_bad_slide=skip are left out and reported;
#  6. k-fold cross-validation (mil.folds=3) on 2 ranks with the patient_id column of part 4:
#     three fold dirs, every non-test slide scored out of fold exactly once, no patient in two
#     folds; a rerun skips finished folds and resumes an unfinished one from its last.pt with the
#     same out-of-fold scores; mil.folds=1, more folds than patients and a predicted split other
#     than test fail naming mil.folds.
# Usage: mil_test.sh <slidetrain binary> <source dir>
set -euo pipefail
BIN="$(realpath "$1")"; SRC="$(realpath "$2")"
W="$(mktemp -d)"; trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
PY="${SLIDETRAIN_TORCH_PYTHON:-/usr/bin/python3}"
fail() { echo "FAIL: $*" >&2; exit 1; }
MPI=(mpirun --oversubscribe --bind-to none)
ARGS=(-c "$SRC/configs/demo.yaml" "synth.out_dir=$W/c" "cohort=$W/c/cohort.csv" "cache_dir=$W/cache"
      "run_dir=$W/run" synth.num_slides=12 synth.width=1536 synth.height=1024 synth.test_fraction=0.25
      synth.val_fraction=0.25 tiling.level=0 tiling.patch_size=64 train.threads=1 data.workers=1
      "features.out_dir=$W/feat" mil.epochs=2 mil.batch_bags=4 mil.hidden=16 mil.bootstrap=50
      predict.heatmap_size=256)
"$BIN" synth "${ARGS[@]}" > /dev/null
"$PY" "$SRC/tests/python/features_parity.py" encoder "$W/enc.pt"
"$BIN" features "${ARGS[@]}" "features.encoder=$W/enc.pt" > "$W/f.log" 2>&1 || { cat "$W/f.log"; fail "features"; }

# 1. np 1 vs np 2.
"$BIN" mil "${ARGS[@]}" "run_dir=$W/np1" > "$W/np1.log" 2>&1 || { cat "$W/np1.log"; fail "mil on 1 rank"; }
"${MPI[@]}" -np 2 "$BIN" mil "${ARGS[@]}" "run_dir=$W/np2" > "$W/np2.log" 2>&1 || { cat "$W/np2.log"; fail "mil on 2 ranks"; }
cat "$W/np2.log"
"$PY" - "$W/np1/mil/weights.pt" "$W/np2/mil/weights.pt" <<'PY' || fail "np 1 and np 2 weights differ"
import sys, torch
a, b = torch.load(sys.argv[1]), torch.load(sys.argv[2])
assert a.keys() == b.keys()
d = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
print("np1 vs np2: %d tensors, max abs difference %.3g" % (len(a), d))
sys.exit(0 if d <= 1e-4 else 1)
PY
for f in slides.csv summary.json report.html metrics.jsonl checkpoints/last.pt; do
  [[ -s "$W/np2/mil/$f" ]] || fail "mil wrote no $f"
done
[[ $(ls "$W/np2/mil/heatmaps"/*.png | wc -l) -eq 3 ]] || fail "expected 3 test heatmaps"
grep -q "slide AUC .* \[.*\] (bootstrap 95 % CI" "$W/np2.log" || fail "no AUC with its CI"
# With predict.viewer the attention map is the viewer's overlay, linked from the mil report.
"$BIN" mil "${ARGS[@]}" "run_dir=$W/np2" mil.epochs=2 predict.viewer=true predict.viewer_max_side=1024 \
  > "$W/viewer.log" 2>&1 || { cat "$W/viewer.log"; fail "mil with predict.viewer"; }
[[ $(ls "$W/np2/mil/viewer"/*.html | wc -l) -eq 3 ]] || fail "expected 3 viewer pages of test slides"
grep -q 'class="viewer" href="viewer/' "$W/np2/mil/report.html" || fail "the mil report does not link the viewer"
page="$(ls "$W/np2/mil/viewer"/*.html | head -1)"
grep -q "attention of abmil" "$page" || fail "the viewer page does not say its overlay is attention"
/usr/bin/python3 "$SRC/tests/python/viewer_browser.py" "$page" --expect slide,heatmap ||
  fail "the attention viewer does not work in Chromium (above)"

# 2. Every model on 2 ranks.
for m in mean_pool max_pool clam_sb transmil; do
  "${MPI[@]}" -np 2 "$BIN" mil "${ARGS[@]}" "run_dir=$W/$m" mil.model=$m mil.epochs=1 mil.clam_k=2 \
    mil.transmil_heads=2 mil.transmil_landmarks=8 > "$W/$m.log" 2>&1 || { cat "$W/$m.log"; fail "mil.model=$m"; }
  [[ $(wc -l < "$W/$m/mil/slides.csv") -eq 4 ]] || fail "$m: slides.csv should hold 3 test slides"
done

# 3. Resume: 2 more epochs continue from last.pt.
"$BIN" mil "${ARGS[@]}" "run_dir=$W/np1" mil.epochs=4 > "$W/resume.log" 2>&1 || { cat "$W/resume.log"; fail "resume"; }
grep -q "resuming from .*last.pt at epoch 3" "$W/resume.log" || { cat "$W/resume.log"; fail "did not resume"; }
[[ $(wc -l < "$W/np1/mil/metrics.jsonl") -eq 4 ]] || fail "metrics.jsonl should hold 4 epochs"
# A run that stopped early stays stopped on a rerun, and reports the epochs it trained (lr 1e-20
# leaves the float weights as they are: the val loss never falls again, patience 1 stops it after
# epoch 2).
ES=("${ARGS[@]}" "run_dir=$W/es" mil.lr=1e-20 mil.patience=1 mil.epochs=5 mil.heatmaps=false)
"$BIN" mil "${ES[@]}" > "$W/es.log" 2>&1 || { cat "$W/es.log"; fail "early stopping"; }
grep -q "early stopping after 1 epochs" "$W/es.log" || { cat "$W/es.log"; fail "did not stop early"; }
"$BIN" mil "${ES[@]}" > "$W/es2.log" 2>&1 || { cat "$W/es2.log"; fail "rerun after early stopping"; }
grep -q "stopped early at epoch 2 before" "$W/es2.log" || { cat "$W/es2.log"; fail "rerun trained on after early stopping"; }
[[ $(wc -l < "$W/es/mil/metrics.jsonl") -eq 2 ]] || fail "rerun after early stopping: metrics.jsonl should hold 2 epochs"
grep -q '"epochs": *2,' "$W/es/mil/summary.json" || { cat "$W/es/mil/summary.json"; fail "rerun: summary.json should say 2 epochs"; }

# 4. Patient-level bags: slides paired into patients of one label.
awk -F, -v OFS=, 'NR == 1 {print $1, $2, $3, $4, "patient_id"; next}
  {n[$3 $4]++; print $1, $2, $3, $4, "p_" $3 "_" $4 "_" int((n[$3 $4] - 1) / 2)}' \
  "$W/c/cohort.csv" > "$W/c/patients.csv"
"$BIN" mil "${ARGS[@]}" "cohort=$W/c/patients.csv" "run_dir=$W/patient" mil.label_level=patient mil.epochs=1 \
  > "$W/patient.log" 2>&1 || { cat "$W/patient.log"; fail "patient-level bags"; }
head -1 "$W/patient/mil/slides.csv" | grep -q "^patient_id," || fail "patient bags: slides.csv not by patient"
"$BIN" mil "${ARGS[@]}" "cohort=$W/c/patients.csv" "run_dir=$W/patient_mean" mil.label_level=patient \
  mil.patient_pooling=mean mil.epochs=1 > "$W/pmean.log" 2>&1 || { cat "$W/pmean.log"; fail "patient mean pooling"; }

# 5. Bad feature files.
id=$(awk -F, '$4 == "train" {id = $1} END {print id}' "$W/c/cohort.csv")  # the last: D is set by the first
cp -r "$W/feat" "$W/bad"
BAD=("${ARGS[@]}" "features.out_dir=$W/bad" mil.epochs=1)
expect_error() {  # expect_error <what> <pattern>
  if "$BIN" mil "${BAD[@]}" "run_dir=$W/bad_run" on_bad_slide=fail > "$W/bad.log" 2>&1; then fail "$1 accepted"; fi
  grep -q -- "$2" "$W/bad.log" || { cat "$W/bad.log"; fail "$1: error does not name $2"; }
  "$BIN" mil "${BAD[@]}" "run_dir=$W/skip_run" on_bad_slide=skip > "$W/skip.log" 2>&1 ||
    { cat "$W/skip.log"; fail "$1 with on_bad_slide=skip"; }
  grep -q "left out (on_bad_slide=skip): .*$id.h5" "$W/skip.log" || { cat "$W/skip.log"; fail "$1 not reported as skipped"; }
}
rm "$W/bad/$id.h5"
expect_error "a missing file" "$W/bad/$id.h5"
head -c 3000 "$W/feat/$id.h5" > "$W/bad/$id.h5"
expect_error "a truncated file" "$W/bad/$id.h5"
"$PY" -c "
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], 'w') as f:
    f['features'] = np.zeros((5, 7), np.float32); f['coords'] = np.zeros((5, 2), np.int64)" "$W/bad/$id.h5"
expect_error "another D" "D = 7"
"$PY" -c "
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], 'w') as f:
    f['features'] = np.zeros((0, 24), np.float32); f['coords'] = np.zeros((0, 2), np.int64)" "$W/bad/$id.h5"
expect_error "an empty bag" "empty bag"

# 6. k-fold cross-validation over the 9 non-test slides (5 patients), grouped by patient.
CV=("${ARGS[@]}" "cohort=$W/c/patients.csv" "run_dir=$W/cv" mil.folds=3 mil.epochs=1 mil.heatmaps=false)
"${MPI[@]}" -np 2 "$BIN" mil "${CV[@]}" > "$W/cv.log" 2>&1 || { cat "$W/cv.log"; fail "mil.folds=3"; }
grep -A8 "^mil cross-validation" "$W/cv.log"
for f in 0 1 2; do
  for x in summary.json oof.csv slides.csv metrics.jsonl checkpoints/last.pt weights.pt; do
    [[ -s "$W/cv/mil/fold_$f/$x" ]] || fail "fold_$f: no $x"
  done
  [[ $(wc -l < "$W/cv/mil/fold_$f/slides.csv") -eq 4 ]] || fail "fold_$f: slides.csv should hold 3 test slides"
done
[[ ! -e "$W/cv/mil/fold_3" ]] || fail "a fourth fold"
"$PY" - "$W/c/patients.csv" "$W/cv/mil" <<'PY' || fail "out-of-fold scores"
import csv, json, sys
cohort = {r["slide_id"]: r for r in csv.DictReader(open(sys.argv[1]))}
summary = json.load(open(sys.argv[2] + "/cv_summary.json"))
assert [f["fold"] for f in summary["folds"]] == [0, 1, 2], summary["folds"]
oof = list(csv.DictReader(open(sys.argv[2] + "/cv_oof.csv")))
ids = [r["slide_id"] for r in oof]
want = sorted(s for s, r in cohort.items() if r["split"] != "test")
assert sorted(ids) == want, ("scored out of fold", sorted(ids), "non-test", want)
fold_of = {}
for r in oof:
    assert cohort[r["slide_id"]]["label"] == r["label"], r
    fold_of.setdefault(cohort[r["slide_id"]]["patient_id"], set()).add(r["fold"])
assert all(len(f) == 1 for f in fold_of.values()), ("a patient in two folds", fold_of)
for f in range(3):
    own = [r["slide_id"] for r in csv.DictReader(open("%s/fold_%d/oof.csv" % (sys.argv[2], f)))]
    assert sorted(own) == sorted(r["slide_id"] for r in oof if r["fold"] == str(f)), f
    assert summary["folds"][f]["oof_bags"] == len(own), (f, summary["folds"][f])
assert summary["pooled_oof"]["bags"] == len(want), summary["pooled_oof"]
print("cv: %d slides out of fold once each, %d patients in one fold each, pooled AUC %s"
      % (len(ids), len(fold_of), summary["pooled_oof"]["auc"]))
PY
# Rerun after fold_2 lost its summary (as if stopped while scoring): folds 0 and 1 are skipped,
# fold 2 resumes from its last.pt (nothing left to train) and scores the same.
cp "$W/cv/mil/cv_oof.csv" "$W/oof_first.csv"; cp "$W/cv/mil/cv_folds.csv" "$W/folds_first.csv"
rm "$W/cv/mil/fold_2/summary.json"
"${MPI[@]}" -np 2 "$BIN" mil "${CV[@]}" > "$W/cv2.log" 2>&1 || { cat "$W/cv2.log"; fail "mil.folds rerun"; }
[[ $(grep -c "^mil fold_[01]: finished earlier .* skipped" "$W/cv2.log") -eq 2 ]] || { cat "$W/cv2.log"; fail "finished folds not skipped"; }
grep -q "resuming from .*fold_2/checkpoints/last.pt" "$W/cv2.log" || { cat "$W/cv2.log"; fail "fold_2 did not resume"; }
! grep -q "resuming from .*fold_[01]/" "$W/cv2.log" || fail "a finished fold was run again"
cmp "$W/oof_first.csv" "$W/cv/mil/cv_oof.csv" || fail "out-of-fold scores changed on resume"
cmp "$W/folds_first.csv" "$W/cv/mil/cv_folds.csv" || fail "per-fold results (or epochs) changed on resume"
for bad in mil.folds=1 mil.folds=20 predict.split=val; do  # 20 folds: only 5 patients
  if "$BIN" mil "${CV[@]}" $bad "run_dir=$W/cv_bad" > "$W/cvbad.log" 2>&1; then fail "$bad accepted"; fi
  grep -q "error: mil.folds: " "$W/cvbad.log" || { cat "$W/cvbad.log"; fail "$bad: error does not name mil.folds"; }
done
echo "mil OK"
