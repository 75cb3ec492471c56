#pragma once
// k-fold assignment shared by `slidetrain cv` (patch classifiers) and `slidetrain mil` with
// mil.folds (MIL models): the same slides land in the same folds for the same seed, so the two
// cross-validations of one cohort are comparable fold by fold.
#include <cstdint>
#include <string>
#include <vector>

#include "wsi/Cohort.h"

namespace slidetrain {

/// Fold (0..folds-1) of each cohort slide, -1 for slides of the test split. The non-test slides
/// are grouped by patient_id (a slide without one is its own group), so one patient's slides
/// share a fold; the groups are shuffled with `seed` and dealt round-robin label by label
/// (stratified by the label of the group's first slide). Depends only on (cohort, folds, seed).
/// Throws ConfigError naming `key` (the setting that asked for `folds`) when folds < 2 or there
/// are fewer groups than folds.
std::vector<int> assignFolds(const wsi::Cohort& cohort, int folds, uint64_t seed, const std::string& key);

}  // namespace slidetrain
