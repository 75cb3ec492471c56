#include "src/data/ClassOrder.h"

#include <algorithm>
#include <filesystem>

#include "wsi/PatchFolders.h"

namespace fs = std::filesystem;

namespace slidetrain {

namespace {

/// The class folder of the first image labelled `label` (for messages).
std::string classFolderOf(const wsi::Cohort& c, const std::string& label) {
  for (const auto& e : c.slides) {
    if (e.label != label) continue;
    for (fs::path p = fs::path(e.path).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
      if (p.filename() == label) return p.string();
  }
  return label;
}

/// The patch-folder dataset of data.patch_folders; every class folder must be in data.classes.
wsi::Cohort readPatchFolders(const DataSettings& data) {
  wsi::Cohort c = wsi::scanPatchFolders(data.patchFolders);
  for (const auto& cls : c.classes)
    if (!data.classes.empty() && std::find(data.classes.begin(), data.classes.end(), cls) == data.classes.end())
      throw ConfigError("data.classes does not list the class folder '" + classFolderOf(c, cls) +
                        "'. HINT: add '" + cls + "' to data.classes or remove the folder");
  return c;
}

}  // namespace

wsi::Cohort readCohort(const RunSettings& run, const DataSettings& data, bool forPrediction) {
  const bool folders = data.source == "patch_folders";
  wsi::Cohort c = folders ? readPatchFolders(data) : wsi::Cohort::read(run.cohort, /*requireLabels=*/!forPrediction);
  const std::string what = folders ? "patch folders " + data.patchFolders : "cohort " + run.cohort;
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
      throw ConfigError(std::string(e.what()) + " (" + what + ")");
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
