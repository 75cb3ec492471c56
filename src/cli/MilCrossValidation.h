#pragma once
// `slidetrain mil` with mil.folds = K >= 2: k-fold cross-validation of the MIL model in one job.
// The slides outside the test split are dealt to K folds by assignFolds (src/data/Folds.h, the
// same as `slidetrain cv`): grouped by patient_id, stratified by label, seeded. Fold k trains on
// the other folds and early-stops on fold k (its val split), then scores fold k (out of fold)
// and the test split: one runMilOnce (src/cli/MilRun.h) into run_dir/mil/fold_<k>/, with
// oof.csv. run_dir/mil/cv_folds.csv and cv_summary.json hold per-fold values, their mean ± sd
// and the AUC of all out-of-fold scores pooled; cv_oof.csv holds those scores.
// Resume: a fold whose summary.json has this run's fingerprint is skipped; any other fold runs,
// resuming from its checkpoints/last.pt (train.resume: auto).
#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "wsi/Cohort.h"

namespace slidetrain {

/// Runs (or skips) every fold, then writes the summary; returns the exit code. Collective: every
/// rank runs every fold, data-parallel as a single run.
int runMilCrossValidation(const Settings& settings, const dist::Planes& planes, const wsi::Cohort& cohort);

}  // namespace slidetrain
