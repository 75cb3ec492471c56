#pragma once
// The cohort of a run with its class order: class indices follow data.classes and the LAST class
// is the positive one of binary metrics (AUC, the positive class's F1, heatmaps).
#include <string>

#include "src/config/Settings.h"
#include "wsi/Cohort.h"

namespace slidetrain {

/// The cohort CSV of `run.cohort` (data.source: patch_folders: the images of data.patch_folders,
/// wsi/PatchFolders.h, a class folder missing from a non-empty data.classes being a ConfigError
/// naming it) with the class order of data.classes ([] keeps the sorted
/// labels). forPrediction: labels may be missing (new or external slides); the class names then
/// come from data.classes, else from the training run's run_dir/config.yaml, else from the labels
/// present (a ConfigError says how to give them when some slides are unlabelled and none is known).
wsi::Cohort readCohort(const RunSettings& run, const DataSettings& data, bool forPrediction = false);

/// "classes: normal, tumor (positive: tumor)" for the start of a run.
std::string classOrderLine(const wsi::Cohort& cohort);

}  // namespace slidetrain
