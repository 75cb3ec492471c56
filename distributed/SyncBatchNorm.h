#pragma once
// SyncBatchNorm (1d and 2d): batch statistics over the global batch of all ranks. Forward
// all-reduces per-channel sum, sum of squares and count in one fused call (unequal and empty
// local batches work); backward all-reduces sum(dy) and sum(dy*(x-mean)). Eval uses running
// statistics with no communication. With no communicator it is exactly torch's BatchNorm; with
// one of any size (world size 1 included) training uses its own computation, so that 1 and N
// ranks normalise alike. The model zoo builds every BatchNorm as this module;
// convertSyncBatchNorm turns synchronisation on. Collective order: one all-reduce per layer in forward order, one per
// layer in backward order: identical on every rank running the same model.
#include <memory>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "distributed/Comm.h"

namespace slidetrain::dist {

struct SyncBatchNormOptions {
  int64_t numFeatures = 0;
  double eps = 1e-5;
  double momentum = 0.1;
  bool affine = true;
  bool trackRunningStats = true;
};

class SyncBatchNormImpl : public torch::nn::Module {
 public:
  explicit SyncBatchNormImpl(SyncBatchNormOptions options, std::shared_ptr<Comm> comm = nullptr);
  /// Input [N, C] or [N, C, L] (1d) or [N, C, H, W] (2d). Training with a communicator of size > 1
/// issues one all-reduce here and one in backward (see the collective order above). The weight
/// and bias gradients are this rank's LOCAL sums (as PyTorch's SyncBatchNorm): they equal the
/// global-batch gradient after GradSync only when each rank's loss is scaled by
/// lossScaleForGlobalMean (GradSync.h) - which for equal local batches is the usual per-rank mean.
  at::Tensor forward(const at::Tensor& input);
  void setComm(std::shared_ptr<Comm> comm) { comm_ = std::move(comm); }
  const std::shared_ptr<Comm>& comm() const { return comm_; }
  const SyncBatchNormOptions& options() const { return options_; }
  void reset_parameters();

  // Same names as torch::nn::BatchNorm so state_dicts match PyTorch's.
  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  at::Tensor normalize(const at::Tensor& input);  ///< forward at the input's (full) precision

  SyncBatchNormOptions options_;
  std::shared_ptr<Comm> comm_;
};
TORCH_MODULE(SyncBatchNorm);

/// Turns on synchronisation: gives `comm` to every SyncBatchNorm in `module` (the root included)
/// and returns how many layers now synchronise. A torch::nn::BatchNorm1d/2d/3d can only be
/// replaced where libtorch lets a container swap a child of another type: inside a
/// torch::nn::ModuleDict (replaced by a SyncBatchNorm carrying the same weights and buffers).
/// Anywhere else (a typed member, Sequential, ModuleList) the parent's forward would keep calling
/// the old object, so it throws DistError naming the module's dotted path and leaves the model
/// untouched: build such layers as dist::SyncBatchNorm. Replaced layers have new parameter
/// tensors, so convert before creating the optimizer and GradSync.
int convertSyncBatchNorm(torch::nn::Module& module, std::shared_ptr<Comm> comm);

}  // namespace slidetrain::dist
