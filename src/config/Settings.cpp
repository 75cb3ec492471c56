// Config (YAML + schema) -> typed sections. The only place that reads keys by name.
#include "src/config/Settings.h"

#include <algorithm>
#include <filesystem>
#include <thread>

#include "src/config/Config.h"

namespace fs = std::filesystem;

namespace slidetrain {

namespace {

int toInt(int64_t v) { return static_cast<int>(v); }

RunSettings runFrom(const Config& c) {
  RunSettings r;
  r.runDir = c.getString("run_dir");
  r.cohort = c.getString("cohort");
  r.cacheDir = c.getString("cache_dir");
  r.seed = static_cast<uint64_t>(c.getInt("seed"));
  r.skipBadSlides = c.getString("on_bad_slide") == "skip";
  return r;
}

SynthSettings synthFrom(const Config& c) {
  SynthSettings s;
  s.outDir = c.getString("synth.out_dir");
  wsi::SynthOptions& o = s.slides;
  o.numSlides = toInt(c.getInt("synth.num_slides"));
  o.width = toInt(c.getInt("synth.width"));
  o.height = toInt(c.getInt("synth.height"));
  o.mpp = c.getFloat("synth.mpp");
  o.tumorFraction = c.getFloat("synth.tumor_fraction");
  o.testFraction = c.getFloat("synth.test_fraction");
  o.valFraction = c.getFloat("synth.val_fraction");
  o.tumorTissueShare = c.getFloat("synth.tumor_tissue_share");
  o.slideVariation = c.getFloat("synth.slide_variation");
  o.seed = static_cast<uint64_t>(c.getInt("seed"));
  o.tileSize = toInt(c.getInt("synth.tile_size"));
  o.jpegQuality = toInt(c.getInt("synth.jpeg_quality"));
  s.patchFolders = c.getString("synth.patch_folders");
  s.patchFolderMaxPerSlide = c.getInt("synth.patch_folder_max_per_slide");
  if (o.valFraction > 0 && o.testFraction + o.valFraction >= 1)
    throw ConfigError("synth.test_fraction + synth.val_fraction must be below 1 (got " +
                      std::to_string(o.testFraction) + " + " + std::to_string(o.valFraction) +
                      "): leave slides to train on");
  return s;
}

TilingSettings tilingFrom(const Config& cfg) {
  TilingSettings s;
  s.index.level = toInt(cfg.getInt("tiling.level"));
  s.index.size = toInt(cfg.getInt("tiling.patch_size"));
  s.index.stride = toInt(cfg.getInt("tiling.stride"));
  s.index.minTissue = cfg.getFloat("tiling.min_tissue");
  s.index.targetMpp = cfg.getOptFloat("tiling.target_mpp");
  s.index.targetMagnification = cfg.getOptFloat("tiling.target_magnification");
  if (s.index.targetMpp && s.index.targetMagnification)
    throw ConfigError("tiling.target_mpp and tiling.target_magnification are both set; set one");
  s.index.maxWhiteFraction = cfg.getFloat("tiling.max_white_fraction");
  s.index.maxBlackFraction = cfg.getFloat("tiling.max_black_fraction");
  s.index.whiteThreshold = toInt(cfg.getInt("tiling.white_threshold"));
  s.index.blackThreshold = toInt(cfg.getInt("tiling.black_threshold"));
  s.labels.mode = cfg.getString("tiling.label_mode") == "area" ? wsi::LabelOptions::Mode::Area
                                                               : wsi::LabelOptions::Mode::Centre;
  s.labels.minArea = cfg.getFloat("tiling.min_label_area");
  s.labels.grid = toInt(cfg.getInt("tiling.label_grid"));
  s.labels.roiOnly = cfg.getBool("tiling.roi_only");
  s.exportCsv = cfg.getBool("tiling.export_csv");
  s.tissue.level = toInt(cfg.getInt("tissue.level"));
  s.maskDir = cfg.getString("tissue.mask_dir");
  if (!s.maskDir.empty() && !fs::is_directory(s.maskDir))
    throw ConfigError("tissue.mask_dir: '" + s.maskDir + "' is not a directory");
  s.tissue.thumbnailMaxSide = toInt(cfg.getInt("tissue.thumbnail_max_side"));
  s.tissue.threshold = cfg.getFloat("tissue.threshold");
  s.tissue.medianRadius = toInt(cfg.getInt("tissue.median_radius"));
  s.tissue.closeRadius = toInt(cfg.getInt("tissue.close_radius"));
  s.tissue.minComponentArea = toInt(cfg.getInt("tissue.min_component_area"));
  s.tissue.fillHoles = cfg.getBool("tissue.fill_holes");
  s.tissue.background = cfg.getString("tissue.background");
  s.mppOverride = cfg.getOptFloat("tiling.mpp_override");
  s.useAnnotations = cfg.getBool("tiling.use_annotations");
  s.backgroundClass = cfg.getString("tiling.background_class");
  s.cacheDir = cfg.getString("cache_dir");
  s.annotationsDir = (fs::path(cfg.getString("cohort")).parent_path() / "annotations").string();
  s.skipBadSlides = cfg.getString("on_bad_slide") == "skip";
  const int64_t t = cfg.getInt("tiling.threads");
  s.threads = t > 0 ? toInt(t) : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  try {
    s.index.validate();
    s.tissue.validate();
    s.labels.validate();
  } catch (const std::invalid_argument& e) {
    throw ConfigError(e.what());
  }
  return s;
}

DataSettings dataFrom(const Config& c) {
  DataSettings d;
  d.workers = toInt(c.getInt("data.workers"));
  d.prefetchBatches = toInt(c.getInt("data.prefetch_batches"));
  d.slideCache = toInt(c.getInt("data.slide_cache"));
  d.maxPatchesPerSlide = c.getInt("data.max_patches_per_slide");
  d.classes = c.getStringList("data.classes");
  d.classBalanced = c.getBool("data.class_balanced");
  d.mean = c.getFloatList("data.mean");
  d.std = c.getFloatList("data.std");
  if (d.mean.size() != 3) throw ConfigError("data.mean: expected 3 values");
  if (d.std.size() != 3) throw ConfigError("data.std: expected 3 values");
  d.directReads = c.getBool("data.direct_reads");
  d.tileCacheMb = c.getFloat("data.tile_cache_mb");
  d.groupWindowBatches = toInt(c.getInt("data.group_window_batches"));
  d.source = c.getString("data.source");
  d.patchFolders = c.getString("data.patch_folders");
  if (d.source == "patch_folders" && d.patchFolders.empty())
    throw ConfigError("data.patch_folders: empty, but data.source is patch_folders. HINT: set it to the "
                      "folder of <split>/<class>/ images (docs/patch_folders.md)");
  return d;
}

wsi::AugmentOptions augmentFrom(const Config& cfg) {
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

ModelSettings modelFrom(const Config& c) {
  ModelSettings m;
  m.name = c.getString("model.name");
  m.activation = c.getString("model.activation");
  m.batchNorm = c.getBool("model.batch_norm");
  m.bnPosition = c.getString("model.bn_position");
  m.dropout = c.getFloat("model.dropout");
  m.head = c.getString("model.head");
  m.pretrained = c.getString("model.pretrained");
  m.freezeUpTo = c.getString("model.freeze_up_to");
  m.unfreezeAfterEpochs = c.getInt("model.unfreeze_after_epochs");
  return m;
}

OptimizerSettings optimizerFrom(const Config& c) {
  OptimizerSettings o;
  o.name = c.getString("optimizer.name");
  o.lr = c.getFloat("optimizer.lr");
  o.momentum = c.getOptFloat("optimizer.momentum");
  o.nesterov = c.getBool("optimizer.nesterov");
  o.weightDecay = c.getFloat("optimizer.weight_decay");
  o.rmspropMomentum = c.getFloat("optimizer.rmsprop_momentum");
  o.alpha = c.getFloat("optimizer.alpha");
  o.beta1 = c.getFloat("optimizer.beta1");
  o.beta2 = c.getFloat("optimizer.beta2");
  o.eps = c.getFloat("optimizer.eps");
  o.scaleLrWithBatch = c.getBool("optimizer.scale_lr_with_batch");
  o.referenceBatchSize = c.getInt("optimizer.reference_batch_size");
  return o;
}

ScheduleSettings scheduleFrom(const Config& c) {
  ScheduleSettings s;
  s.name = c.getString("schedule.name");
  s.gamma = c.getFloat("schedule.gamma");
  s.milestones = c.getFloatList("schedule.milestones");
  s.warmupSteps = c.getInt("schedule.warmup_steps");
  s.minLr = c.getFloat("schedule.min_lr");
  return s;
}

TrainSettings trainFrom(const Config& c) {
  TrainSettings t;
  t.epochs = c.getInt("train.epochs");
  t.batchSize = c.getInt("train.batch_size");
  t.maxSteps = c.getInt("train.max_steps");
  t.accumulationSteps = c.getInt("train.accumulation_steps");
  t.backend = c.getString("train.backend");
  t.device = c.getString("train.device");
  t.deterministic = c.getBool("train.deterministic");
  t.syncBatchnorm = c.getBool("train.sync_batchnorm");
  t.bucketMb = c.getFloat("train.bucket_mb");
  t.firstBucketMb = c.getFloat("train.first_bucket_mb");
  t.timeoutS = c.getFloat("train.timeout_s");
  t.threads = toInt(c.getInt("train.threads"));
  t.logEvery = c.getInt("train.log_every");
  t.progress = c.getString("train.progress");
  t.loss = c.getString("train.loss");
  t.labelSmoothing = c.getFloat("train.label_smoothing");
  t.classWeights = c.getFloatList("train.class_weights");
  t.gradClipNorm = c.getFloat("train.grad_clip_norm");
  t.earlyStopping.metric = c.getString("train.early_stopping.metric");
  t.earlyStopping.mode = c.getString("train.early_stopping.mode");
  t.earlyStopping.patience = c.getInt("train.early_stopping.patience");
  t.earlyStopping.minDelta = c.getFloat("train.early_stopping.min_delta");
  t.resume = c.getString("train.resume");
  t.checkpointEverySteps = c.getInt("train.checkpoint_every_steps");
  t.amp = c.getString("train.amp");
  t.ampInitScale = c.getFloat("train.amp_init_scale");
  t.ampGrowthInterval = c.getInt("train.amp_growth_interval");
  t.channelsLast = c.getBool("train.channels_last");
  return t;
}

CvSettings cvFrom(const Config& c) {
  CvSettings v;
  v.folds = toInt(c.getInt("cv.folds"));
  v.checkpoint = c.getString("cv.checkpoint");
  return v;
}


}  // namespace

Settings::Settings(std::shared_ptr<const Config> source) : source_(std::move(source)) {
  const Config& c = *source_;
  run = runFrom(c);
  synth = synthFrom(c);
  tiling = tilingFrom(c);
  data = dataFrom(c);
  augment = augmentFrom(c);
  model = modelFrom(c);
  optimizer = optimizerFrom(c);
  schedule = scheduleFrom(c);
  train = trainFrom(c);
  cv = cvFrom(c);
  features = detail::featuresFrom(c, run.runDir);
  mil = detail::milFrom(c);
  predict = detail::predictFrom(c);
}

Settings Settings::defaults(const std::vector<std::string>& overrides) {
  auto c = std::make_shared<Config>();
  c->applyOverrides(overrides);
  return Settings(std::move(c));
}

Settings Settings::load(const std::string& path, const std::vector<std::string>& overrides) {
  auto c = std::make_shared<Config>(Config::load(path));
  c->applyOverrides(overrides);
  return Settings(std::move(c));
}

Settings Settings::parse(const std::string& yamlText, const std::string& origin,
                         const std::vector<std::string>& overrides) {
  auto c = std::make_shared<Config>(Config::parse(yamlText, origin));
  c->applyOverrides(overrides);
  return Settings(std::move(c));
}

Settings Settings::with(const std::vector<std::string>& overrides) const {
  auto c = std::make_shared<Config>(*source_);  // a deep copy: this one stays as it is
  c->applyOverrides(overrides);
  return Settings(std::move(c));
}

Settings Settings::withClasses(const std::vector<std::string>& classes) const {
  std::string list;
  for (std::string c : classes) {
    for (size_t at = 0; (at = c.find('\'', at)) != std::string::npos; at += 2) c.insert(at, "'");
    list += (list.empty() ? "'" : ", '") + c + "'";  // YAML single-quoted: any label survives
  }
  return with({"data.classes=[" + list + "]"});
}

std::string Settings::yaml() const { return source_->toYaml(); }

std::vector<std::string> Settings::changedKeys() const { return source_->nonDefaultKeys(); }

std::vector<std::pair<std::string, std::string>> Settings::values() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const KeySpec& s : configSchema()) out.emplace_back(s.key, source_->valueText(s.key));
  return out;
}

std::string Settings::schemaMarkdown() { return Config::schemaMarkdown(); }

}  // namespace slidetrain
