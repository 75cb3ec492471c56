#pragma once
// One optimizer step of data-parallel training: per micro-batch the forward (under autocast),
// the loss under the global-mean convention (docs/distributed.md) and the backward, during which
// GradSync all-reduces the gradients; at the end of the step the fp16 loss scaler's check, the
// gradient clipping, the optimizer and the LR schedule.
#include <memory>
#include <vector>

#include <ATen/Tensor.h>
#include <torch/optim/optimizer.h>

#include "distributed/GradSync.h"
#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "src/data/BatchTensor.h"
#include "src/models/ModelZoo.h"
#include "src/train/Amp.h"
#include "src/train/EpochPlan.h"
#include "src/train/Loss.h"
#include "src/train/Optim.h"

namespace slidetrain {

/// What a micro-batch's forward gave, on the model's device (nothing here is read back to the
/// host): float32 logits, this rank's (class-weighted) loss sum and the labels.
struct MicroBatchResult {
  at::Tensor logits;
  at::Tensor lossSum;
  at::Tensor labels;
};

class TrainStep {
 public:
  /// `model` is on `device` already. Converts BatchNorm to SyncBatchNorm (train.sync_batchnorm),
  /// builds GradSync and the optimizer (collective), the LR schedule (linear scaling rule with
  /// optimizer.scale_lr_with_batch) and the fp16 loss scaler (train.amp).
  TrainStep(const Settings& settings, dist::Planes planes, std::shared_ptr<Model> model,
            LossOptions loss, at::Device device, const EpochPlan& plan, bool lead);
  ~TrainStep();

  /// Optimizer and GradSync for the currently trainable parameters (again after layers
  /// unfreeze). Collective (GradSync construction).
  void rebuildOptimizer();

  /// Puts the model in training mode before a pass over the data.
  void startPass();
  /// Starts optimizer step `step`: its LR, zeroed gradients, and the loss factor world /
  /// `normaliser` (the global sum of the class weights of the step's samples).
  void begin(int64_t step, double normaliser);
  /// Forward and backward of one micro-batch; `last` = the step's last (GradSync all-reduces).
  /// `samplesPerRank`: every rank's share of this global micro-batch, in rank order, as the epoch
  /// plan knows it (SyncBatchNorm then needs no count back from the device; GlobalBatchScope);
  /// empty when unknown. Queues work on the device without waiting for it.
  MicroBatchResult forwardBackward(const wsi::Batch& batch, bool last,
                                   const std::vector<int64_t>& samplesPerRank = {});
  /// Ends the step: averaged gradients, the fp16 inf/NaN check (collective), clipping, the
  /// optimizer. Returns false when the loss scaler skipped it.
  bool finish();

  /// train.sync_batchnorm=false on several ranks: rank 0's BatchNorm buffers go to every rank
  /// (before every training forward and before validation, as DDP's broadcast_buffers=True).
  void broadcastBuffers();

  torch::optim::Optimizer& optimizer() { return *optimizer_; }
  /// train.grad_clip_norm on the step's gradients, without reading anything back from the device.
  void clipGradNorm();
  const LrSchedule& schedule() const { return *schedule_; }
  LossScaler* scaler() { return scaler_.get(); }
  double baseLr() const { return lr_; }
  AmpMode amp() const { return amp_; }

 private:
  dist::Planes planes_;
  std::shared_ptr<Model> model_;
  LossOptions loss_;
  at::Device device_;
  DeviceBatch batches_;    ///< normalisation on the device, made once
  at::Tensor classWeights_;  ///< on the device, made once (undefined without class weights)
  AmpMode amp_;
  bool channelsLast_, broadcastBuffers_;
  double gradClip_, lr_, factor_ = 0;
  dist::GradSyncOptions syncOptions_;
  OptimizerOptions optimizerOptions_;
  std::unique_ptr<dist::GradSync> sync_;
  std::vector<at::Tensor> params_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  std::unique_ptr<LossScaler> scaler_;
};

}  // namespace slidetrain
