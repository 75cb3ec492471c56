#pragma once
// The configuration as plain typed structs, one per section of the YAML (docs/config.md). The
// YAML file and the key=value overrides are parsed once, here, against the schema (Schema.cpp:
// every key's type, bounds, default and help), and every component takes the section it needs.
// Nothing outside src/config looks a key up by its name (tests/config/NoRawConfig.cmake).
//
// Sections have no defaults of their own: every value comes from the schema, so Settings::load
// and Settings::defaults() are the way to make one.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "src/config/Errors.h"
#include "src/config/PredictSettings.h"
#include "src/config/SlideLevelSettings.h"
#include "wsi/Augment.h"
#include "wsi/PatchIndex.h"
#include "wsi/SynthCohort.h"
#include "wsi/TissueMask.h"

namespace slidetrain {

class Config;

/// Top-level keys: where a run lives and what it reads.
struct RunSettings {
  std::string runDir;        ///< run_dir
  std::string cohort;        ///< cohort (CSV)
  std::string cacheDir;      ///< cache_dir
  uint64_t seed{};           ///< seed
  bool skipBadSlides{};      ///< on_bad_slide == skip
};

/// synth.*: `slidetrain synth` (seed from the top level).
struct SynthSettings {
  std::string outDir;
  wsi::SynthOptions slides;
  std::string patchFolders;         ///< synth.patch_folders: "" = none (src/data/PatchFolderExport.h)
  int64_t patchFolderMaxPerSlide{};  ///< synth.patch_folder_max_per_slide: 0 = every patch
};

/// tiling.* and tissue.*: slide -> tissue mask -> patch grid -> labels (src/data/Tiling.h).
struct TilingSettings {
  wsi::PatchIndexOptions index;
  wsi::TissueMaskOptions tissue;
  wsi::LabelOptions labels;  ///< tiling.label_mode, min_label_area, label_grid, roi_only
  std::optional<double> mppOverride;
  std::string maskDir;       ///< tissue.mask_dir: <mask_dir>/<slide_id>.png replaces Otsu
  bool exportCsv{};          ///< tiling.export_csv: <run_dir>/patches/<slide_id>.csv
  bool useAnnotations{};
  std::string backgroundClass;  ///< label of annotated slides' patches outside polygons
  std::string cacheDir;         ///< cache_dir
  std::string annotationsDir;   ///< <cohort dir>/annotations
  bool skipBadSlides{};         ///< on_bad_slide == skip
  int threads{};                ///< tiling.threads, 0 resolved to the number of cores
};

/// data.*: the patch stream, sampling, class order and input normalisation.
struct DataSettings {
  int workers{};             ///< 0 = from the rank's cores (runtime/Runtime.h ThreadPlan)
  int prefetchBatches{};
  int slideCache{};
  int64_t maxPatchesPerSlide{};
  std::vector<std::string> classes;  ///< empty = sorted labels
  bool classBalanced{};
  std::vector<double> mean, std;     ///< 3 values each
  bool directReads{};
  double tileCacheMb{};
  int groupWindowBatches{};
  std::string source;        ///< slides, patch_folders
  std::string patchFolders;  ///< data.patch_folders (wsi/PatchFolders.h)
};

/// model.*
struct ModelSettings {
  std::string name;          ///< a name or alias of models/ModelZoo.h
  std::string activation;
  bool batchNorm{};
  std::string bnPosition;
  double dropout{};          ///< -1 = the architecture's default
  std::string head;
  std::string pretrained;    ///< state_dict file, "" = random init
  std::string freezeUpTo;
  int64_t unfreezeAfterEpochs{};
};

/// optimizer.*
struct OptimizerSettings {
  std::string name;
  double lr{};
  std::optional<double> momentum;
  bool nesterov{};
  double weightDecay{}, rmspropMomentum{}, alpha{}, beta1{}, beta2{}, eps{};
  bool scaleLrWithBatch{};
  int64_t referenceBatchSize{};
};

/// schedule.*
struct ScheduleSettings {
  std::string name;
  double gamma{};
  std::vector<double> milestones;
  int64_t warmupSteps{};
  double minLr{};
};

/// train.early_stopping.*
struct EarlyStoppingSettings {
  std::string metric, mode;
  int64_t patience{};
  double minDelta{};
};

/// train.*
struct TrainSettings {
  int64_t epochs{}, batchSize{}, maxSteps{}, accumulationSteps{};
  std::string backend, device;
  bool deterministic{}, syncBatchnorm{};
  double bucketMb{}, firstBucketMb{}, timeoutS{};
  int threads{};             ///< 0 = from the rank's cores
  int64_t logEvery{};
  std::string progress;      ///< auto, bar, lines, none
  std::string loss;          ///< cross_entropy, bce
  double labelSmoothing{};
  std::vector<double> classWeights;
  double gradClipNorm{};
  EarlyStoppingSettings earlyStopping;
  std::string resume;        ///< auto, none or a file
  int64_t checkpointEverySteps{};
  std::string amp;           ///< off, fp16, bf16
  double ampInitScale{};
  int64_t ampGrowthInterval{};
  bool channelsLast{};
};

/// cv.*
struct CvSettings {
  int folds{};
  std::string checkpoint;    ///< last, best
};

/// Every section of one configuration, and the YAML it came from (for run_dir/config.yaml, the
/// run fingerprint and warnings about keys that have no effect).
class Settings {
 public:
  RunSettings run;
  SynthSettings synth;
  TilingSettings tiling;
  DataSettings data;
  wsi::AugmentOptions augment;  ///< augment.*
  ModelSettings model;
  OptimizerSettings optimizer;
  ScheduleSettings schedule;
  TrainSettings train;
  CvSettings cv;
  FeaturesSettings features;
  MilSettings mil;
  PredictSettings predict;

  /// The schema's defaults with `overrides` ("a.b=value") applied.
  static Settings defaults(const std::vector<std::string>& overrides = {});
  /// A YAML file (ConfigError naming the file, dotted key and line) with `overrides` applied.
  static Settings load(const std::string& path, const std::vector<std::string>& overrides = {});
  /// YAML text; `origin` names it in errors.
  static Settings parse(const std::string& yamlText, const std::string& origin,
                        const std::vector<std::string>& overrides = {});

  /// A copy with more overrides applied (re-checked against the schema).
  Settings with(const std::vector<std::string>& overrides) const;
  /// A copy with data.classes set to `classes`, so that run_dir/config.yaml records the order.
  Settings withClasses(const std::vector<std::string>& classes) const;

  /// Every key, defaults included, as YAML (run_dir/config.yaml, `slidetrain config`).
  std::string yaml() const;
  /// Keys whose value differs from the schema default, in schema order.
  std::vector<std::string> changedKeys() const;
  /// Every (key, value as one line of YAML) pair in schema order (the run fingerprint).
  std::vector<std::pair<std::string, std::string>> values() const;
  /// Markdown table of every key (docs/config.md).
  static std::string schemaMarkdown();

 private:
  explicit Settings(std::shared_ptr<const Config> source);
  std::shared_ptr<const Config> source_;
};

}  // namespace slidetrain
