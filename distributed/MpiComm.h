#pragma once
// MpiComm: the CPU (and fallback) communicator over MPI_COMM_WORLD (or a split of it).
#include <memory>
#include <string>
#include <vector>

#include "distributed/Comm.h"

namespace slidetrain::dist {

/// Initialises MPI once per process (MPI_THREAD_MULTIPLE when available, else SERIALIZED) and
/// finalises it at exit. Safe to call many times.
void ensureMpiInitialized();
/// Rank and size of MPI_COMM_WORLD (1 process without mpirun).
int worldRank();
int worldSize();
/// MPI_COMM_WORLD's size when MPI is running, even if slidetrain's start failed; 1 otherwise.
/// Never throws (for error paths).
int mpiWorldSizeNoThrow() noexcept;
/// Rank of this process among the processes on its node, and their count (MPI_Comm_split_type).
int localRank();
int localSize();
/// "Open MPI v4.1.4, ..." (MPI_Get_library_version, first line), and NCCL and the CUDA runtime
/// when the NCCL communicator is built; for `slidetrain --version`. Needs no MPI_Init.
std::vector<std::string> libraryVersions();
/// Ends the whole job: prints `why` prefixed with rank/host to stderr and calls MPI_Abort.
[[noreturn]] void abortJob(const std::string& why, int code = 1);

/// allReduceAsync runs on a background communication thread (blocking MPI_Allreduce on a second
/// private communicator, FIFO) when MPI provides MPI_THREAD_MULTIPLE and
/// CommOptions::commThread is set: submit async all-reduces in the same order on every rank.
class MpiComm : public Comm {
 public:
  explicit MpiComm(CommOptions options = {});
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  int rank() const override;
  int size() const override;
  std::string backend() const override { return "mpi"; }
  void allReduce(at::Tensor& t, ReduceOp op = ReduceOp::Sum) override;
  std::shared_ptr<Work> allReduceAsync(at::Tensor t, ReduceOp op = ReduceOp::Sum) override;
  void broadcast(at::Tensor& t, int root = 0) override;
  at::Tensor allGather(const at::Tensor& t) override;
  void barrier() override;
  void waitForAll(const std::function<void()>& tick, std::chrono::milliseconds every) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// The communicator for this process: NCCL when `backend` is "nccl" (or "auto" with CUDA
/// available and NCCL built), else MPI. Throws DistError when "nccl" is asked for but not built.
std::shared_ptr<Comm> makeComm(const std::string& backend, CommOptions options = {});

}  // namespace slidetrain::dist
