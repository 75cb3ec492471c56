#pragma once
// `slidetrain cv`: k-fold cross-validation in one mpirun job. The non-test slides are grouped by
// patient_id (else slide), the groups shuffled with the seed, stratified by label and dealt to
// cv.folds folds (assignFolds, src/data/Folds.h; `slidetrain mil` with mil.folds uses the same).
// Fold f trains on the other folds into <run_dir>/fold_f (a full train run: checkpoints,
// metrics.jsonl) and is evaluated on fold f at patch and slide level;
// <run_dir>/cv_summary.json and cv_summary.csv hold per-fold values and mean ± sd; each fold
// folder gets train's report.html, and <run_dir>/report.html is compare's page over the folds.
#include <string>

#include "src/config/Settings.h"

namespace slidetrain {

/// Runs every fold; returns the exit code. `commandLine`: for the reports. Collective over MPI_COMM_WORLD.
int runCrossValidation(const Settings& settings, const std::string& commandLine = "");

}  // namespace slidetrain
