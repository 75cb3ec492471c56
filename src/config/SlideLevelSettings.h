#pragma once
// The sections of slide-level learning (docs/mil.md): features.* and mil.*. Part of Settings
// (src/config/Settings.h), parsed in SlideLevelSettings.cpp.
#include <cstdint>
#include <string>
#include <vector>

namespace slidetrain {

class Config;

/// features.* (`slidetrain features`; out_dir resolved against run_dir)
struct FeaturesSettings {
  std::string encoder;       ///< "model" or a TorchScript file
  int inputSize{};           ///< 0 = tiling.patch_size
  std::vector<double> mean, std;  ///< empty = data.mean / data.std
  bool float16{};            ///< features.dtype == float16
  std::string outDir;        ///< "" resolved to <run_dir>/features
  std::string split;
  int batchSize{};
};

/// mil.* (`slidetrain mil`)
struct MilSettings {
  std::string model;
  int64_t hidden{};
  double dropout{};
  int clamK{};
  double clamInstanceWeight{};
  int transmilLayers{}, transmilHeads{}, transmilLandmarks{};
  bool patientLevel{};       ///< mil.label_level == patient
  bool patientBag{};         ///< mil.patient_pooling == bag
  int64_t epochs{}, batchBags{}, maxPatches{}, patience{};
  std::string optimizer;     ///< mil.optimizer (momentum, betas, eps from optimizer.*)
  double lr{}, weightDecay{};
  bool heatmaps{};
  int bootstrap{};
  int folds{};               ///< mil.folds: 0 = one run on train/val; K >= 2 = K-fold cross-validation
};

namespace detail {
FeaturesSettings featuresFrom(const Config& c, const std::string& runDir);
MilSettings milFrom(const Config& c);
}  // namespace detail

}  // namespace slidetrain
