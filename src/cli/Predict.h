#pragma once
// `slidetrain predict`: patch probabilities for a split, slide labels by mean / max / top-k
// pooling, patches.csv and slides.csv in the run directory, slide-level accuracy printed.
#include <string>

#include "src/config/Settings.h"

namespace slidetrain {

/// `commandLine`: how the program was started, for report.html's run summary.
int runPredict(const Settings& settings, const std::string& commandLine = "");

}  // namespace slidetrain
