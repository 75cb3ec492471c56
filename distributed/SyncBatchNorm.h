#pragma once
// SyncBatchNorm (1d and 2d): batch statistics over the global batch of all ranks. Forward
// all-reduces per-channel sums in one fused call (unequal and empty local batches work);
// backward all-reduces sum(dy) and sum(dy*(x-mean)). Eval uses running statistics with no
// communication. With no communicator it is exactly torch's BatchNorm; with one of any size
// (world size 1 included) training uses its own computation, so that 1 and N ranks normalise
// alike:
//  * CPU: fused one-pass kernels (BatchNormKernels.h) for the statistics, the normalisation and
//    both halves of the backward; sums in float64 per channel; one all-reduce of [sum, sum of
//    squares, count] per layer in forward, of [sum dy, sum dy*(x-mean)] in backward.
//  * CUDA: ATen's kernels as torch.nn.SyncBatchNorm uses them (batch_norm_stats, an all-gather
//    of [mean, invstd, count], batch_norm_gather_stats_with_counts, batch_norm_elemt,
//    batch_norm_backward_reduce, batch_norm_backward_elemt); fp16/bf16 input goes straight to
//    them and channels_last is kept.
// The global count of values per channel comes from a GlobalBatchScope when the caller has one
// (the trainer knows every rank's micro-batch from the epoch plan): then the forward reads
// nothing back from the device. Without one it is read from the reduced statistics (one host
// sync per layer on CUDA, as torch's SyncBatchNorm does to drop empty ranks).
// The model zoo builds every BatchNorm as this module; convertSyncBatchNorm turns
// synchronisation on. Collective order: one collective per layer in forward order, one per
// layer in backward order: identical on every rank running the same model.
#include <memory>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "distributed/Comm.h"

namespace slidetrain::dist {

/// The samples each rank feeds the training forward running on this thread, in rank order, as
/// the caller knows them without communication (the trainer: from the epoch plan). While a scope
/// is alive, SyncBatchNorm takes the global count from it (samples x spatial size) instead of
/// reading it back from the device after the collective. A layer whose local batch is not this
/// rank's entry, or whose communicator is of another size, ignores the scope. Scopes nest.
class GlobalBatchScope {
 public:
  explicit GlobalBatchScope(std::vector<int64_t> samplesPerRank);
  ~GlobalBatchScope();
  GlobalBatchScope(const GlobalBatchScope&) = delete;
  GlobalBatchScope& operator=(const GlobalBatchScope&) = delete;
  /// The innermost live scope's samples on this thread, or null.
  static const std::vector<int64_t>* current();

 private:
  std::vector<int64_t> samples_;
  const std::vector<int64_t>* previous_;
};

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
  /// issues one collective here and one in backward (see the collective order above). The weight
  /// and bias gradients are this rank's LOCAL sums (as PyTorch's SyncBatchNorm): they equal the
  /// global-batch gradient after GradSync only when each rank's loss is scaled by
  /// lossScaleForGlobalMean (GradSync.h) - which for equal local batches is the usual per-rank
  /// mean. Throws DistError (on every rank alike) when the global batch has at most one value
  /// per channel.
  at::Tensor forward(const at::Tensor& input);
  void setComm(std::shared_ptr<Comm> comm) { comm_ = std::move(comm); }
  const std::shared_ptr<Comm>& comm() const { return comm_; }
  const SyncBatchNormOptions& options() const { return options_; }
  void reset_parameters();

  // Same names as torch::nn::BatchNorm so state_dicts match PyTorch's.
  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  at::Tensor trainCpu(const at::Tensor& input);
  at::Tensor trainCuda(const at::Tensor& input);
  /// The global count per channel from the live GlobalBatchScope; < 0 when there is none that
  /// fits this layer's input.
  double scopedCount(const at::Tensor& input) const;

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
