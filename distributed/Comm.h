#pragma once
// Communicator interface: collectives over torch tensors. Every collective must be called in the
// same order on every rank of the communicator (the MPI/NCCL contract); callers document where.
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

namespace slidetrain::dist {

/// A distributed failure: what() names the rank, host and collective.
struct DistError : std::runtime_error {
  explicit DistError(const std::string& msg) : std::runtime_error(msg) {}
};

enum class ReduceOp { Sum, Avg, Max, Min };

/// Handle of an asynchronous collective. wait() blocks until the result is in the tensor(s)
/// and rethrows the collective's error; it honours the communicator's timeout.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  virtual bool isCompleted() = 0;
};

struct CommOptions {
  /// Every collective must complete within this time, else the job is aborted naming the rank.
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  /// MPI backend: run allReduceAsync on the communicator's background thread (blocking
  /// MPI_Allreduce on a private communicator, Horovod's design) so it progresses while the
  /// caller computes. Needs MPI_THREAD_MULTIPLE; without it (or when false) allReduceAsync is
  /// MPI_Iallreduce completed by MPI_Test polling. Must be the same on every rank. NCCL ignores it.
  bool commThread = true;
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  ///< "mpi" or "nccl"

  /// In-place all-reduce of a contiguous tensor.
  virtual void allReduce(at::Tensor& t, ReduceOp op = ReduceOp::Sum) = 0;
  virtual std::shared_ptr<Work> allReduceAsync(at::Tensor t, ReduceOp op = ReduceOp::Sum) = 0;
  /// In-place broadcast from `root`.
  virtual void broadcast(at::Tensor& t, int root = 0) = 0;
  /// Returns a tensor of shape [size(), *t.shape] holding every rank's `t`.
  virtual at::Tensor allGather(const at::Tensor& t) = 0;
  virtual void barrier() = 0;
  /// A barrier without the communicator's timeout, for waits of unknown length (ranks tiling
  /// their share of a cohort): `tick` runs every `every` while this rank waits. MpiComm polls an
  /// MPI_Ibarrier; the default is barrier(). A dead peer still ends the job (the launcher's
  /// doing); a live but slow one is waited for.
  virtual void waitForAll(const std::function<void()>& tick, std::chrono::milliseconds every) {
    (void)tick;
    (void)every;
    barrier();
  }

  /// The device-plane contract (see Planes.h): GradSync, SyncBatchNorm and inference declare
  /// each tensor they will send through the device plane (gradient buckets, parameters and
  /// buffers, BatchNorm statistics, predictions, the loss scaler's inf flag) when they create
  /// it. MPI and NCCL ignore the declaration; StrictComm (backend "strict", for tests) refuses
  /// any tensor whose storage was not declared, as NCCL refuses host memory, so host data sent
  /// to the device plane fails on a CPU-only machine too.
  virtual void declareDeviceTensor(const at::Tensor& t) { (void)t; }
};

}  // namespace slidetrain::dist
