#pragma once
// Private state of Trainer, shared by Trainer.cpp (setup, epochs), TrainEpoch.cpp (the
// micro-batch loop) and TrainReport.cpp (epoch metrics, validation, checkpoints).
#include <fstream>
#include <memory>
#include <optional>

#include <ATen/Tensor.h>
#include <torch/optim/optimizer.h>

#include "distributed/GradSync.h"
#include "distributed/Planes.h"
#include "src/train/Amp.h"
#include "src/data/BatchTensor.h"
#include "src/train/Loss.h"
#include "src/train/Optim.h"
#include "src/train/Progress.h"
#include "src/data/Sampling.h"
#include "src/train/TrainState.h"
#include "src/train/Trainer.h"
#include "wsi/Augment.h"

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
};

struct Trainer::Impl {
  explicit Impl(Settings s) : settings(std::move(s)) {}
  Settings settings;
  dist::Planes planes;  ///< host plane: metrics, barriers; device plane: gradients, statistics
  int rank = 0, world = 1;
  bool lead = true;
  SplitData train;
  std::optional<SplitData> val;
  std::vector<std::string> classNames;
  int numClasses = 2;

  uint64_t seed = 1;
  std::string runDir;
  LossOptions loss;
  SamplingOptions sampling;
  int64_t microBatch = 0;       ///< global micro-batch (train.batch_size)
  int64_t groupSize = 1;        ///< micro-batches per optimizer step (all of them for gd)
  bool fullBatch = false;       ///< optimizer gd: one step per epoch
  int64_t epochSize = 0;        ///< samples per epoch (after cap/balance)
  int64_t microPerEpoch = 0;
  int64_t stepsPerEpoch = 0, totalSteps = 0, epochs = 0;
  double gradClip = 0;
  int64_t checkpointEvery = 0;
  std::string monitor, monitorMode;
  int64_t patience = 0;
  double minDelta = 0;
  /// train.sync_batchnorm=false on several ranks: rank 0's BatchNorm buffers are broadcast before
  /// every training forward and before validation (PyTorch DDP's broadcast_buffers=True), so every
  /// rank evaluates and checkpoints the same model.
  bool broadcastBuffers = false;
  AmpMode amp = AmpMode::Off;
  bool channelsLast = false;
  at::Device device{at::kCPU};
  std::unique_ptr<LossScaler> scaler;  ///< train.amp: fp16 only
  int64_t crashAfterStep = -1;
  int preemptSignal = 0;   ///< the signal all ranks agreed to stop on (0: none)
  int preemptRank = -1;    ///< the lowest rank that received it
  std::function<void(int64_t, int64_t, const wsi::Batch&)> batchObserver;  ///< tests

  std::shared_ptr<Model> model;
  std::unique_ptr<dist::GradSync> sync;
  std::vector<at::Tensor> params;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<LrSchedule> schedule;
  Normalization norm;
  wsi::AugmentOptions aug;
  int64_t currentEpoch = 0;  ///< read by stream workers; changed only between passes
  wsi::StreamOptions streamOptions;
  std::unique_ptr<wsi::PatchStream> stream;
  std::unique_ptr<Progress> progress;
  std::ofstream metricsOut;
  TrainState state;

  /// Optimizer and gradient synchronisation for the currently trainable parameters (again after
  /// layers unfreeze). Collective (GradSync construction).
  void buildOptimizer();
  OptimizerOptions optimizerOptions;
  /// Runs the micro-batches of `state.epoch` from `state.stepInEpoch` on; stops early at the
  /// planned total, the crash hook or an agreed preemption. Returns false when the crash hook
  /// fired or the run was preempted (preemptSignal set, last.pt written).
  bool trainEpoch(EpochTally& tally);
  /// The normaliser of optimizer group `g` of an epoch order: sum of class weights of its
  /// samples over the global batch (the sample count without class weights).
  double groupNormaliser(const std::vector<int64_t>& order, int64_t g) const;
  /// All-reduces the tally, validates, updates the monitor, writes metrics.jsonl and
  /// checkpoints. Returns the epoch's result. Collective.
  TrainResult endEpoch(const EpochTally& tally, int64_t epochIndex);
  /// Writes checkpoints/last.pt (rank 0).
  void saveLast();
  /// Collective, at a step every rank reaches: true (and preemptSignal set) when any rank got
  /// SIGTERM/SIGUSR1 (src/runtime/Preemption.h); then writes last.pt when `save`.
  bool preemptionAgreed(bool save);
  std::string checkpointDir() const;
};

}  // namespace slidetrain
