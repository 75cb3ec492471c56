#pragma once
// The end of an epoch: the train metrics all-reduced over ranks, validation, the monitored
// metric (early stopping, best.pt), the epoch line and metrics.jsonl.
#include <cstdint>
#include <fstream>
#include <optional>
#include <string>

#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "src/data/SplitData.h"
#include "src/eval/Aggregate.h"
#include "src/eval/Inference.h"
#include "src/train/EpochLoop.h"
#include "src/train/EpochPlan.h"
#include "src/train/TrainState.h"
#include "src/train/TrainStep.h"
#include "src/train/Trainer.h"

namespace slidetrain {

struct EpochOutcome {
  TrainResult result;
  bool improved = false;  ///< the monitored metric improved (best.pt is due)
};

class EpochReport {
 public:
  /// Resolves the monitored metric (train.early_stopping.*; warns on rank 0 when it falls back).
  EpochReport(const Settings& settings, std::optional<SplitData> val, int numClasses, bool lead);

  const std::string& monitor() const { return monitor_; }
  const std::string& monitorMode() const { return monitorMode_; }
  /// Rank 0: appends to <run_dir>/metrics.jsonl from now on.
  void openMetricsFile(const std::string& runDir);

  /// All-reduces the tally, validates with `inference` (collective), updates the monitor and
  /// `state` (best, bad epochs, epoch counters), prints the epoch line and writes metrics.jsonl.
  EpochOutcome finish(const EpochTally& tally, int64_t epochIndex, const EpochPlan& plan,
                      TrainState& state, TrainStep& step, Model& model, const dist::Planes& planes,
                      const InferenceOptions& inference);

 private:
  std::optional<SplitData> val_;
  int numClasses_;
  bool lead_;
  std::string monitor_, monitorMode_;
  int64_t patience_;
  double minDelta_;
  SlidePooling pooling_;
  std::ofstream metricsOut_;
};

}  // namespace slidetrain
