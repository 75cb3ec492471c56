#pragma once
// NcclComm: the CUDA communicator of the device plane (Planes.h). One ncclComm_t per process;
// rank 0 creates the ncclUniqueId and sends it with MPI_Bcast (so MPI must be up: mpirun or srun
// with PMI). Collectives run on the communicator's own non-blocking CUDA stream, after an event
// recorded on the caller's compute stream: libtorch's current CUDA stream - the legacy default
// stream unless the caller chose another - or the per-thread default stream in a CPU-only libtorch
// build. The NCCL stream is non-blocking (no implicit wait on the legacy default stream); the
// order both ways is explicit, through events. Work::wait() makes the
// compute stream wait for the collective's event and returns at once: the host is not blocked,
// so GradSync's bucket all-reduces overlap backward as in PyTorch DDP. Tensors handed to a
// collective are recorded as used on the NCCL stream (caching allocator), so dropping them early
// is safe. A watchdog thread ends the job when a collective does not finish within the timeout.
// Built only when SLIDETRAIN_WITH_NCCL (CUDA runtime + NCCL found).
#include <memory>
#include <string>

#include "distributed/Comm.h"

namespace slidetrain::dist {

/// Number of visible CUDA devices; 0 when the driver/runtime is missing or errors. `why`, when
/// given, receives the CUDA error text in that case.
int cudaDeviceCountOrZero(std::string* why = nullptr);

/// "NCCL 2.22.3 (runtime), CUDA runtime 12.4" for `slidetrain --version`.
std::string ncclAndCudaVersions();

/// A copy of a CPU tensor on `device` (libtorch's allocator in a CUDA libtorch, else cudaMalloc),
/// and back; both ordered on the compute stream. For tests and benchmarks that must also run with
/// a CPU-only libtorch, where at::Tensor::to(kCUDA) is not available.
at::Tensor copyToCudaDevice(const at::Tensor& cpu, int device);
at::Tensor copyToHost(const at::Tensor& cuda);

class NcclComm : public Comm {
 public:
  /// Collective over MPI_COMM_WORLD (called in the same order on every rank). `device` < 0
  /// picks localRank() % deviceCount. Throws DistError naming rank/host and the NCCL version.
  explicit NcclComm(CommOptions options = {}, int device = -1);
  /// Aborts the NCCL communicator if it reported an asynchronous error, else destroys it.
  ~NcclComm() override;
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  NcclComm(NcclComm&&) noexcept;
  NcclComm& operator=(NcclComm&&) noexcept;

  int rank() const override;
  int size() const override;
  std::string backend() const override { return "nccl"; }
  int device() const;

  /// CUDA tensors only (a host tensor is refused naming the call). allReduce, broadcast and
  /// allGather return once the compute stream is ordered after the collective: work queued on it
  /// afterwards (or a synchronising copy to the host) sees the result. allReduceAsync's wait()
  /// does the same. Avg is ncclAvg for floating types.
  void allReduce(at::Tensor& t, ReduceOp op = ReduceOp::Sum) override;
  std::shared_ptr<Work> allReduceAsync(at::Tensor t, ReduceOp op = ReduceOp::Sum) override;
  void broadcast(at::Tensor& t, int root = 0) override;
  at::Tensor allGather(const at::Tensor& t) override;
  /// Blocks the host until every rank arrived (with the timeout).
  void barrier() override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with in-flight Work objects and the watchdog
};

}  // namespace slidetrain::dist
