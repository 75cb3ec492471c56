#pragma once
// GradSync: the DDP reducer. Gradients are grouped into buckets in reverse registration order;
// each bucket is all-reduced asynchronously as soon as all its gradients are ready during
// backward (autograd hooks) and averaged by finalize() before the optimizer step. Parameters'
// .grad() are views of the bucket buffers (PyTorch DDP's gradient_as_bucket_view), so backward
// accumulates straight into the buckets: no copy in or out in the steady state.
// Collective order: identical on every rank because buckets are fixed at construction and
// launched in bucket order (MpiComm's communication thread runs them in that FIFO order).
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "distributed/Planes.h"

namespace slidetrain::dist {

/// Loss convention (see docs/distributed.md). GradSync AVERAGES gradients over ranks, and
/// SyncBatchNorm's weight/bias gradients are per-rank local sums. For the result to be the
/// gradient of the mean loss over the global batch, each rank must backpropagate
///     loss_r = lossScaleForGlobalMean(globalCount, worldSize) * sum over its samples of loss_i
/// where globalCount is the number of samples in the global batch (all ranks). With equal local
/// batches this is the usual per-rank mean loss; with unequal (or empty) local batches the mean
/// of the local batch would be wrong, and this is right. globalCount is known without
/// communication from the sampler (rankSliceOfBatch sizes) or from an all-reduce of counts.
inline double lossScaleForGlobalMean(int64_t globalCount, int worldSize) {
  return globalCount > 0 ? static_cast<double>(worldSize) / static_cast<double>(globalCount) : 0.0;
}

struct GradSyncOptions {
  double bucketCapMB = 25.0;
  double firstBucketCapMB = 1.0;
  /// "none", "fp16", "bf16": the bucket travels in half precision. CUDA parameters only; for
  /// CPU parameters it is ignored with one warning on stderr (MPI has no half types).
  std::string compression = "none";
  void validate() const;
};

class GradSync {
 public:
  /// Registers hooks on `module`'s parameters that require grad. Checks every rank holds the same
  /// parameter and buffer shapes (an all-gather on the host plane; DistError naming the first
  /// differing rank, on every rank) and broadcasts parameters and buffers from rank 0 on the
  /// device plane, where the gradient buckets are reduced too (all of them declared as device
  /// data). Collective: construct in the same order on every rank. `module` must outlive this
  /// object (broadcastBuffers reads it).
  GradSync(Planes planes, torch::nn::Module& module, GradSyncOptions options = {});
  ~GradSync();

  /// When false, backward passes only accumulate locally (gradient accumulation micro-batches).
  void setSyncEnabled(bool enabled);
  /// Waits for all outstanding bucket all-reduces and leaves the averaged gradients in .grad()
  /// (a view of the bucket: keep a clone, not the tensor, if you need it after the next synced
  /// backward; zero_grad() in place or set-to-none both work). Call after
  /// backward() and before optimizer.step(), on every rank (a rank that skipped backward still
  /// calls it: its parameters contribute their accumulated gradient or zeros). A parameter with
  /// no gradient on any rank gets a zero gradient, not an undefined one. No-op when sync is
  /// disabled. With accumulation, the averaged value includes the micro-batches run with sync
  /// disabled (their .grad() is added when the synced backward's hook fires).
  void finalize();
  /// Broadcasts buffers (e.g. BN running stats) from rank 0, coalesced into one broadcast per
  /// dtype on the device plane (PyTorch DDP's broadcast_buffers). Collective.
  void broadcastBuffers();
  size_t numBuckets() const;
  /// Elements of each bucket, in launch order (benchmarks compare against the same sizes).
  std::vector<int64_t> bucketElements() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slidetrain::dist
