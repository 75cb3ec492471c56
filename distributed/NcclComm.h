#pragma once
// NcclComm: the CUDA communicator. One ncclComm_t per process; rank 0 creates the ncclUniqueId
// and sends it with MPI_Bcast (so MPI must be up: mpirun or srun with PMI). Collectives run on
// the communicator's own non-blocking CUDA stream, ordered after the compute stream's pending
// work by an event and before later compute work by another event. Tensors are raw device
// pointers (at::Tensor::data_ptr()); nothing here needs a CUDA-enabled libtorch.
// Built only when SLIDETRAIN_WITH_NCCL (CUDA + NCCL found under /usr/local/cuda).
#include <memory>
#include <string>

#include "distributed/Comm.h"

namespace slidetrain::dist {

/// Number of visible CUDA devices; 0 when the driver/runtime is missing or errors. `why`, when
/// given, receives the CUDA error text in that case.
int cudaDeviceCountOrZero(std::string* why = nullptr);

/// A copy of a CPU tensor in cudaMalloc'd memory on `device`, and back. For tests and benchmarks:
/// the Debian libtorch has no CUDA allocator, so at::Tensor::to(kCUDA) is not available.
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

  /// CUDA tensors only. The blocking forms wait on the host (with the timeout) so that
  /// returning means the data is in place; the async form only orders the compute stream after
  /// the collective when wait() is called. Avg is ncclAvg for floating types.
  void allReduce(at::Tensor& t, ReduceOp op = ReduceOp::Sum) override;
  std::shared_ptr<Work> allReduceAsync(at::Tensor t, ReduceOp op = ReduceOp::Sum) override;
  void broadcast(at::Tensor& t, int root = 0) override;
  /// The result is a CUDA tensor allocated with cudaMalloc (freed by its deleter).
  at::Tensor allGather(const at::Tensor& t) override;
  void barrier() override;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with in-flight Work objects and the watchdog
};

}  // namespace slidetrain::dist
