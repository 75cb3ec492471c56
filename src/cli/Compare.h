#pragma once
// `slidetrain compare [--out DIR] [--metric NAME] [NAME=]RUN_DIR...`: compare.html and compare.csv
// over runs of train, cv and mil (src/eval/Compare.h reads them, ComparePage.h draws the page).
#include <string>
#include <vector>

namespace slidetrain {

/// `args`: what follows "compare". Returns the exit code; throws UsageError on bad arguments and
/// wsi::DataError (naming the file) on a folder that cannot be read.
int runCompare(const std::vector<std::string>& args, const std::string& commandLine = "");

/// `slidetrain compare --help`.
std::string compareHelp();

}  // namespace slidetrain
