#pragma once
#include "src/config/Settings.h"

namespace slidetrain {

/// `slidetrain features`: one HDF5 feature file per slide of features.split (src/mil).
int runFeatures(const Settings& settings);

/// `slidetrain mil`: trains a MIL model on the feature files, then predicts the test split.
int runMil(const Settings& settings);

}  // namespace slidetrain
