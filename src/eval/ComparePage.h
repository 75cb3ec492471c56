#pragma once
// compare.html: one self-contained page (offline, the charts inline as report.html's) comparing
// groups of runs: final metrics as mean ± sd per group, a boxplot of one metric over each group's
// runs, overlaid training curves, a table of every run with a link to its report.html.
// `slidetrain compare` writes it, and `slidetrain cv` as its report.html over its folds.
#include <string>
#include <utility>
#include <vector>

#include "src/eval/Compare.h"

namespace slidetrain {

struct ComparePageOptions {
  std::string title = "slidetrain compare";
  std::string metric;       ///< the boxplot's metric (Compare.h's names); must be present
  std::string commandLine;  ///< shown in the run facts ("" = not shown)
  std::vector<std::pair<std::string, std::string>> links;  ///< (text, href) shown under the title
};

/// Writes the page to `path`; links to the runs' report.html are relative to its folder. Charts:
/// boxplot, curves_loss, curves_accuracy, curves_auc (a curve chart with nothing to draw is left
/// out). Throws std::runtime_error naming the file when it cannot be written.
void writeComparePage(const std::string& path, const std::vector<CompareGroup>& groups,
                      const ComparePageOptions& options);

}  // namespace slidetrain
