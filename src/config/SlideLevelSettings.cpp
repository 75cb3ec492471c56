#include "src/config/SlideLevelSettings.h"

#include "src/config/Config.h"
#include "src/config/Errors.h"

namespace slidetrain::detail {
namespace {
int toInt(int64_t v) { return static_cast<int>(v); }
}  // namespace

FeaturesSettings featuresFrom(const Config& c, const std::string& runDir) {
  FeaturesSettings f;
  f.encoder = c.getString("features.encoder");
  f.inputSize = toInt(c.getInt("features.input_size"));
  f.mean = c.getFloatList("features.mean");
  f.std = c.getFloatList("features.std");
  for (const auto& [key, v] : {std::pair{"features.mean", &f.mean}, std::pair{"features.std", &f.std}})
    if (!v->empty() && v->size() != 3)
      throw ConfigError(std::string(key) + ": expected 3 values (R, G, B) or none, got " +
                        std::to_string(v->size()));
  for (double s : f.std)
    if (s <= 0) throw ConfigError("features.std: every value must be > 0");
  f.float16 = c.getString("features.dtype") == "float16";
  f.outDir = c.getString("features.out_dir");
  if (f.outDir.empty()) f.outDir = runDir + "/features";
  f.split = c.getString("features.split");
  f.batchSize = toInt(c.getInt("features.batch_size"));
  if (f.encoder.empty()) throw ConfigError("features.encoder: 'model' or a TorchScript file");
  return f;
}

MilSettings milFrom(const Config& c) {
  MilSettings m;
  m.model = c.getString("mil.model");
  m.hidden = c.getInt("mil.hidden");
  m.dropout = c.getFloat("mil.dropout");
  m.clamK = toInt(c.getInt("mil.clam_k"));
  m.clamInstanceWeight = c.getFloat("mil.clam_instance_weight");
  m.transmilLayers = toInt(c.getInt("mil.transmil_layers"));
  m.transmilHeads = toInt(c.getInt("mil.transmil_heads"));
  m.transmilLandmarks = toInt(c.getInt("mil.transmil_landmarks"));
  m.patientLevel = c.getString("mil.label_level") == "patient";
  m.patientBag = c.getString("mil.patient_pooling") == "bag";
  m.epochs = c.getInt("mil.epochs");
  m.batchBags = c.getInt("mil.batch_bags");
  m.maxPatches = c.getInt("mil.max_patches");
  m.patience = c.getInt("mil.patience");
  m.optimizer = c.getString("mil.optimizer");
  m.lr = c.getFloat("mil.lr");
  m.weightDecay = c.getFloat("mil.weight_decay");
  m.heatmaps = c.getBool("mil.heatmaps");
  m.bootstrap = toInt(c.getInt("mil.bootstrap"));
  m.folds = toInt(c.getInt("mil.folds"));
  if (m.folds == 1)
    throw ConfigError("mil.folds: 1 fold leaves nothing to train on; 0 = no cross-validation, or 2 or more folds");
  if (m.model == "transmil" && m.hidden % m.transmilHeads != 0)
    throw ConfigError("mil.transmil_heads: " + std::to_string(m.transmilHeads) +
                      " does not divide mil.hidden (" + std::to_string(m.hidden) + ")");
  return m;
}

}  // namespace slidetrain::detail
