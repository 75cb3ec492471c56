#pragma once
// What a command (train, cv, predict) runs on: MPI, this rank's device and threads, and the two
// communication planes (distributed/Planes.h). One place, so every verb places the model and
// its tensors by the same rule.
#include <string>

#include <c10/core/Device.h>

#include "distributed/Planes.h"
#include "src/config/Settings.h"

namespace slidetrain {

/// train.device: "cpu"; "cuda" (ConfigError naming the key when this libtorch has no CUDA or no
/// device is visible); "auto" = CUDA when available, else CPU. The CUDA device is the local rank
/// modulo the visible devices: with CUDA_VISIBLE_DEVICES (or SLURM's --gpus-per-task) each rank
/// sees only its own GPU and takes device 0 of what it sees.
c10::Device chooseDevice(const std::string& setting, int localRank);

/// Initialises MPI, picks the device (train.device, chooseDevice), sets the intra-op threads
/// (threadPlanFor, printed by rank 0), turns on deterministic algorithms when
/// train.deterministic and builds the planes (train.backend, train.timeout_s). Collective: every
/// rank calls it once, first.
dist::Planes startRuntime(const TrainSettings& train, const DataSettings& data);

/// Keeps memory that libtorch frees inside the process (glibc malloc: no mmap per large block, no
/// trimming of the heap), so the next step reuses it instead of asking the kernel for fresh zeroed
/// pages: a training step frees and reallocates the same activation sizes every time, and with
/// glibc's defaults page faults took 18-38 % of a CPU step (perf, small_cnn). The equivalent of
/// the jemalloc/tcmalloc preload PyTorch's CPU tuning guide recommends; resident memory stays at
/// its peak. SLIDETRAIN_MALLOC=default keeps glibc's behaviour. No-op without glibc. Called by
/// startRuntime; idempotent.
void keepFreedMemory();

/// train.deterministic: libtorch's deterministic algorithms (an op without one throws, naming
/// itself), deterministic cuDNN without benchmarking, and cuBLAS's fixed workspace
/// (CUBLAS_WORKSPACE_CONFIG=:4096:8 unless already set). Process-wide.
void setDeterministic(bool on);

/// How this rank's cores are split between torch's intra-op threads and the patch stream's
/// workers. `cores` comes from the process's CPU affinity mask (what SLURM or mpirun's binding
/// gave it); a mask that spans the whole node is shared by the node's local ranks, so each takes
/// its share of it. The split never counts a core twice: explicit train.threads / data.workers
/// win; otherwise a CUDA model keeps 1 compute thread and gives the rest to the stream, a CPU
/// model gives the stream a quarter (at least 1) and computes on the rest.
struct ThreadPlan {
  int maskCores = 1;    ///< CPUs in the affinity mask
  int nodeCores = 1;    ///< CPUs online on the node
  int localRanks = 1;
  bool sharedMask = false;  ///< the mask spans the node and is shared by the local ranks
  int share = 1;        ///< cores for this rank
  int compute = 1;      ///< at::set_num_threads
  int workers = 1;      ///< stream workers
  /// "threads: 3 compute + 1 stream workers per rank (affinity: 8 of 8 cores, shared by 2 local ranks)"
  std::string describe() const;
};
ThreadPlan planThreads(int trainThreads, int dataWorkers, int maskCores, int nodeCores,
                       int localRanks, bool cudaModel);
/// The plan for this process: its affinity mask, train.threads, data.workers, and whether the
/// model runs on CUDA (the device startRuntime chose).
ThreadPlan threadPlanFor(const TrainSettings& train, const DataSettings& data, bool cudaModel,
                         int localRanks);

}  // namespace slidetrain
