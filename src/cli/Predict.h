#pragma once
// `slidetrain predict`: patch probabilities for a split, slide labels by mean / max / top-k
// pooling, patches.csv and slides.csv in the run directory, slide-level accuracy printed.
#include "src/config/Settings.h"

namespace slidetrain {

int runPredict(const Settings& settings);

}  // namespace slidetrain
