#pragma once
// One pass over (part of) an epoch: the epoch's sample order (the same on every rank and for any
// world size), this rank's slice of each global micro-batch streamed through the patch stream
// (with seeded augmentation), each micro-batch handed to the TrainStep, progress and telemetry.
#include <functional>
#include <limits>
#include <memory>

#include "src/config/Settings.h"
#include "src/data/BatchTensor.h"
#include "src/data/Sampling.h"
#include "src/data/SplitData.h"
#include "src/eval/Metrics.h"
#include "src/train/EpochPlan.h"
#include "src/train/Progress.h"
#include "src/train/TrainState.h"
#include "src/train/TrainStep.h"
#include "wsi/Augment.h"
#include "wsi/PatchStream.h"

namespace slidetrain {

/// What one pass over (part of) an epoch accumulated on this rank.
struct EpochTally {
  double lossSum = 0;    ///< sum of (class-weighted) per-sample losses
  double weightSum = 0;  ///< sum of the samples' class weights
  int64_t seen = 0;
  ConfusionMatrix cm{2};
  double seconds = 0;
  // Stream telemetry of the pass (this rank).
  double waitSeconds = 0, streamSeconds = 0, decodedMB = 0, queueFill = 0;
  int64_t streamPatches = 0;
  bool reachedEnd = false;  ///< the epoch's last micro-batch was consumed
  int64_t skippedSteps = 0; ///< fp16 steps the loss scaler skipped (inf/NaN gradients)
  /// The model's GPU busy (%) during the pass (runtime/GpuBusy.h); NaN: no GPU or no NVML.
  double gpuBusyPct = std::numeric_limits<double>::quiet_NaN();
  /// Per optimizer step of the pass, in order, this rank's [loss sum, weight sum, correct,
  /// samples]: EpochReport all-reduces them with the epoch's numbers (metrics.jsonl "steps").
  std::vector<double> stepSums;
};

/// After each optimizer step: go on, end the pass here (the run's last step), or abandon it
/// (crash hook or preemption: the pass does not count).
enum class AfterStep { Continue, EndPass, Abandon };

class EpochLoop {
 public:
  /// `streamOptions` come from the rank's thread plan (data/StreamOptions.h).
  EpochLoop(const Settings& settings, SplitData train, LossOptions loss, const EpochPlan& plan,
            int rank, int world, wsi::StreamOptions streamOptions, bool lead);
  ~EpochLoop();

  /// Runs the micro-batches of state.epoch from state.stepInEpoch on, updating `state` after
  /// each optimizer step and asking `after(epochDone)`. Returns false when abandoned.
  bool run(TrainStep& step, TrainState& state, EpochTally& tally,
           const std::function<AfterStep(bool epochDone)>& after);

  /// Testing: sees (epoch, micro-batch of the epoch, the batch as streamed) before each forward.
  void observe(std::function<void(int64_t, int64_t, const wsi::Batch&)> observer);

  const SplitData& split() const { return train_; }
  const Normalization& normalization() const { return norm_; }
  const wsi::StreamOptions& streamOptions() const { return streamOptions_; }

 private:
  /// The sum of the class weights of group g's samples over the global batch.
  double groupNormaliser(const std::vector<int64_t>& order, int64_t g) const;

  SplitData train_;
  SamplingOptions sampling_;
  LossOptions loss_;
  EpochPlan plan_;
  uint64_t seed_;
  int rank_, world_;
  Normalization norm_;
  wsi::AugmentOptions aug_;
  int64_t currentEpoch_ = 0;  ///< read by stream workers; changed only between passes
  wsi::StreamOptions streamOptions_;
  std::unique_ptr<wsi::PatchStream> stream_;
  std::unique_ptr<Progress> progress_;
  int64_t logEvery_ = 1;  ///< micro-batches between reads of the device's loss and accuracy
  std::function<void(int64_t, int64_t, const wsi::Batch&)> observer_;
};

}  // namespace slidetrain
