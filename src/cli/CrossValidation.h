#pragma once
// `slidetrain cv`: k-fold cross-validation in one mpirun job. The non-test slides are grouped by
// patient_id (else slide), the groups shuffled with the seed, stratified by label and dealt to
// cv.folds folds. Fold f trains on the other folds into <run_dir>/fold_f (a full train run:
// checkpoints, metrics.jsonl) and is evaluated on fold f at patch and slide level;
// <run_dir>/cv_summary.json and cv_summary.csv hold per-fold values and mean ± sd.
#include <cstdint>
#include <vector>

#include "src/config/Settings.h"
#include "wsi/Cohort.h"

namespace slidetrain {

/// Fold of each cohort slide (-1 for test-split slides); slides of one patient share a fold.
/// Throws ConfigError (cv.folds) when there are fewer groups than folds.
std::vector<int> assignFolds(const wsi::Cohort& cohort, int folds, uint64_t seed);

/// Runs every fold; returns the exit code. Collective over MPI_COMM_WORLD.
int runCrossValidation(const Settings& settings);

}  // namespace slidetrain
