#include "src/Settings.h"

#include <filesystem>

#include "src/Loss.h"
#include "src/Trainer.h"

namespace fs = std::filesystem;

namespace slidetrain {

ModelOptions modelOptionsFromConfig(const Config& cfg, int numClasses) {
  ModelOptions m;
  m.name = cfg.getString("model.name");
  // bce: binary with one sigmoid output (probabilities become [1 - p, p] in Inference).
  m.numClasses = modelOutputs(lossFromConfig(cfg), numClasses);
  m.inputSize = static_cast<int>(cfg.getInt("tiling.patch_size"));
  m.activation = cfg.getString("model.activation");
  m.batchNorm = cfg.getBool("model.batch_norm");
  m.bnPosition = cfg.getString("model.bn_position");
  m.dropout = cfg.getFloat("model.dropout");
  m.head = cfg.getString("model.head");
  m.validate();
  return m;
}

Normalization normFromConfig(const Config& cfg) {
  Normalization n;
  n.mean = cfg.getFloatList("data.mean");
  n.std = cfg.getFloatList("data.std");
  if (n.mean.size() != 3) throw ConfigError("data.mean: expected 3 values");
  if (n.std.size() != 3) throw ConfigError("data.std: expected 3 values");
  return n;
}

wsi::AugmentOptions augmentFromConfig(const Config& cfg) {
  wsi::AugmentOptions a;
  a.flips = cfg.getBool("augment.flips");
  a.rot90 = cfg.getBool("augment.rot90");
  a.brightness = cfg.getFloat("augment.brightness");
  a.contrast = cfg.getFloat("augment.contrast");
  a.saturation = cfg.getFloat("augment.saturation");
  a.hue = cfg.getFloat("augment.hue");
  a.rotate = cfg.getFloat("augment.rotate");
  a.shift = cfg.getFloat("augment.shift");
  a.scale = cfg.getFloat("augment.scale");
  a.hed = cfg.getFloat("augment.hed");
  a.blur = cfg.getFloat("augment.blur");
  a.sharpen = cfg.getFloat("augment.sharpen");
  a.noise = cfg.getFloat("augment.noise");
  a.stainNorm = cfg.getString("augment.stain_norm") == "reinhard" ? wsi::StainNorm::Reinhard
                                                                  : wsi::StainNorm::None;
  const auto m = cfg.getFloatList("augment.reinhard_mean"), sd = cfg.getFloatList("augment.reinhard_std");
  if (m.size() != 3) throw ConfigError("augment.reinhard_mean: expected 3 values (L, a, b)");
  if (sd.size() != 3) throw ConfigError("augment.reinhard_std: expected 3 values (L, a, b)");
  for (int c = 0; c < 3; ++c) a.reinhardMean[c] = m[c], a.reinhardStd[c] = sd[c];
  try {
    a.validate();
  } catch (const std::exception& e) {
    throw ConfigError(std::string("augment: ") + e.what());
  }
  return a;
}

wsi::Cohort readCohort(const Config& cfg, bool forPrediction) {
  wsi::Cohort c = wsi::Cohort::read(cfg.getString("cohort"), /*requireLabels=*/!forPrediction);
  std::vector<std::string> order = cfg.getStringList("data.classes");
  std::string from = "data.classes";
  const fs::path runConfig = fs::path(cfg.getString("run_dir")) / "config.yaml";
  if (order.empty() && forPrediction && fs::exists(runConfig)) {
    // The class names and order the model was trained with (recorded by train and cv).
    order = Config::load(runConfig.string()).getStringList("data.classes");
    from = runConfig.string() + ": data.classes";
  }
  if (order.empty() && c.unlabelledCount() > 0)
    throw ConfigError(cfg.getString("cohort") + ": " + std::to_string(c.unlabelledCount()) +
                      " slide(s) have no label, and the class names of the model are unknown. "
                      "HINT: set data.classes to the training run's (its run_dir/config.yaml "
                      "records them)");
  if (!order.empty()) {
    try {
      c.setClassOrder(order, from, /*allowAbsent=*/forPrediction);
    } catch (const std::exception& e) {
      throw ConfigError(std::string(e.what()) + " (cohort " + cfg.getString("cohort") + ")");
    }
  }
  return c;
}

Config withClassOrder(const Config& cfg, const wsi::Cohort& cohort) {
  std::string list;
  for (std::string c : cohort.classes) {
    for (size_t at = 0; (at = c.find('\'', at)) != std::string::npos; at += 2) c.insert(at, "'");
    list += (list.empty() ? "'" : ", '") + c + "'";  // YAML single-quoted: any label survives
  }
  Config out = cfg;
  out.applyOverrides({"data.classes=[" + list + "]"});
  return out;
}

std::string classOrderLine(const wsi::Cohort& cohort) {
  std::string s = "classes:";
  for (size_t i = 0; i < cohort.classes.size(); ++i) s += (i ? ", " : " ") + cohort.classes[i];
  if (cohort.classes.size() == 2) s += " (positive: " + cohort.classes.back() + ")";
  return s;
}

OptimizerOptions optimizerFromConfig(const Config& cfg) {
  OptimizerOptions o;
  o.name = cfg.getString("optimizer.name");
  o.lr = cfg.getFloat("optimizer.lr");
  o.momentum = cfg.getOptFloat("optimizer.momentum");
  o.nesterov = cfg.getBool("optimizer.nesterov");
  o.rmspropMomentum = cfg.getFloat("optimizer.rmsprop_momentum");
  o.alpha = cfg.getFloat("optimizer.alpha");
  o.weightDecay = cfg.getFloat("optimizer.weight_decay");
  o.beta1 = cfg.getFloat("optimizer.beta1");
  o.beta2 = cfg.getFloat("optimizer.beta2");
  o.eps = cfg.getFloat("optimizer.eps");
  o.validate();
  return o;
}

ScheduleOptions scheduleFromConfig(const Config& cfg) {
  ScheduleOptions s;
  s.name = cfg.getString("schedule.name");
  s.gamma = cfg.getFloat("schedule.gamma");
  s.milestones = cfg.getFloatList("schedule.milestones");
  s.warmupSteps = cfg.getInt("schedule.warmup_steps");
  s.minLr = cfg.getFloat("schedule.min_lr");
  s.validate();
  return s;
}

wsi::StreamOptions streamOptionsFromConfig(const Config& cfg, int localSize) {
  wsi::StreamOptions so;
  const int64_t w = cfg.getInt("data.workers");
  so.workers = w > 0 ? static_cast<int>(w) : threadPlanFor(cfg, localSize).workers;
  so.prefetchBatches = static_cast<int>(cfg.getInt("data.prefetch_batches"));
  so.slideCache = static_cast<int>(cfg.getInt("data.slide_cache"));
  so.skipBadPatches = cfg.getString("on_bad_slide") == "skip";
  so.directReads = cfg.getBool("data.direct_reads");
  so.tileCacheBytes = static_cast<int64_t>(cfg.getFloat("data.tile_cache_mb") * (1 << 20));
  so.groupWindowBatches = static_cast<int>(cfg.getInt("data.group_window_batches"));
  try {
    so.validate();
  } catch (const std::exception& e) {
    throw ConfigError(std::string("data: ") + e.what());
  }
  return so;
}

InferenceOptions inferenceOptionsFromConfig(const Config& cfg, int localSize) {
  InferenceOptions io;
  io.batchSize = static_cast<int>(cfg.getInt("predict.batch_size"));
  io.stream = streamOptionsFromConfig(cfg, localSize);
  io.norm = normFromConfig(cfg);
  const wsi::AugmentOptions a = augmentFromConfig(cfg);
  io.stainNorm = a.stainNorm;
  io.reinhardMean = a.reinhardMean;
  io.reinhardStd = a.reinhardStd;
  return io;
}

SlidePooling poolingFromConfig(const Config& cfg) {
  SlidePooling pool;
  pool.method = cfg.getString("predict.aggregation");
  pool.topk = static_cast<int>(cfg.getInt("predict.topk"));
  pool.threshold = cfg.getFloat("predict.threshold");
  return pool;
}

void validateSettings(const Config& cfg) {
  (void)modelOptionsFromConfig(cfg, 2);
  (void)normFromConfig(cfg);
  (void)augmentFromConfig(cfg);
  (void)optimizerFromConfig(cfg);
  (void)scheduleFromConfig(cfg);
  (void)inferenceOptionsFromConfig(cfg, 1);
  (void)poolingFromConfig(cfg);
}

}  // namespace slidetrain
