#include "src/data/ClassOrder.h"

#include <filesystem>

namespace fs = std::filesystem;

namespace slidetrain {

wsi::Cohort readCohort(const RunSettings& run, const DataSettings& data, bool forPrediction) {
  wsi::Cohort c = wsi::Cohort::read(run.cohort, /*requireLabels=*/!forPrediction);
  std::vector<std::string> order = data.classes;
  std::string from = "data.classes";
  const fs::path runConfig = fs::path(run.runDir) / "config.yaml";
  if (order.empty() && forPrediction && fs::exists(runConfig)) {
    // The class names and order the model was trained with (recorded by train and cv).
    order = Settings::load(runConfig.string()).data.classes;
    from = runConfig.string() + ": data.classes";
  }
  if (order.empty() && c.unlabelledCount() > 0)
    throw ConfigError(run.cohort + ": " + std::to_string(c.unlabelledCount()) +
                      " slide(s) have no label, and the class names of the model are unknown. "
                      "HINT: set data.classes to the training run's (its run_dir/config.yaml "
                      "records them)");
  if (!order.empty()) {
    try {
      c.setClassOrder(order, from, /*allowAbsent=*/forPrediction);
    } catch (const std::exception& e) {
      throw ConfigError(std::string(e.what()) + " (cohort " + run.cohort + ")");
    }
  }
  return c;
}

std::string classOrderLine(const wsi::Cohort& cohort) {
  std::string s = "classes:";
  for (size_t i = 0; i < cohort.classes.size(); ++i) s += (i ? ", " : " ") + cohort.classes[i];
  if (cohort.classes.size() == 2) s += " (positive: " + cohort.classes.back() + ")";
  return s;
}

}  // namespace slidetrain
