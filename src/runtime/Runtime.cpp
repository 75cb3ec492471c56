// Runtime: see Runtime.h.
#include "src/runtime/Runtime.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <sched.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "distributed/MpiComm.h"
#include "src/config/Errors.h"

namespace slidetrain {

c10::Device chooseDevice(const std::string& setting, int localRank) {
  if (setting == "cpu") return c10::Device(c10::kCPU);
  const bool cuda = torch::cuda::is_available();
  if (setting == "cuda" && !cuda)
    throw ConfigError(std::string("train.device: cuda, but ") +
                      (at::hasCUDA() ? "no CUDA device is visible to this process (check "
                                       "CUDA_VISIBLE_DEVICES and the job's GPU request)"
                                     : "this slidetrain is linked against a CPU-only libtorch") +
                      ". HINT: train.device=auto runs on the CPU where no GPU is usable");
  if (setting != "cuda" && setting != "auto")
    throw ConfigError("train.device: expected auto, cpu or cuda, got \"" + setting + "\"");
  if (!cuda) return c10::Device(c10::kCPU);
  const int count = static_cast<int>(torch::cuda::device_count());
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(std::max(0, localRank) % count));
}

void setDeterministic(bool on) {
  if (on) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(on);
  if (on) at::globalContext().setBenchmarkCuDNN(false);
}

void keepFreedMemory() {
#if defined(__GLIBC__)
  const char* mode = std::getenv("SLIDETRAIN_MALLOC");
  if (mode && std::string(mode) == "default") return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);   // blocks below 1 GiB come from the heap and go back to it
  mallopt(M_TRIM_THRESHOLD, 1 << 30);  // the heap keeps up to 1 GiB of free memory at its top
#endif
}

dist::Planes startRuntime(const TrainSettings& train, const DataSettings& data) {
  keepFreedMemory();
  dist::ensureMpiInitialized();
  const c10::Device device = chooseDevice(train.device, dist::localRank());
  const ThreadPlan threads = threadPlanFor(train, data, device.is_cuda(), dist::localSize());
  at::set_num_threads(threads.compute);
  if (dist::worldRank() == 0) std::printf("%s\n", threads.describe().c_str());
  setDeterministic(train.deterministic);
  dist::CommOptions co;
  co.timeout = std::chrono::milliseconds(static_cast<int64_t>(train.timeoutS * 1000));
  return dist::makePlanes(train.backend, device, co);
}

ThreadPlan planThreads(int trainThreads, int dataWorkers, int maskCores, int nodeCores,
                       int localRanks, bool cudaModel) {
  ThreadPlan p;
  p.maskCores = std::max(1, maskCores);
  p.nodeCores = std::max(p.maskCores, nodeCores);
  p.localRanks = std::max(1, localRanks);
  // A launcher that binds ranks gives each a mask of its own cores; an unbound one (mpirun
  // --bind-to none, srun without --cpu-bind) leaves every rank the whole node.
  p.sharedMask = p.localRanks > 1 && p.maskCores >= p.nodeCores;
  p.share = std::max(1, p.sharedMask ? p.maskCores / p.localRanks : p.maskCores);
  if (trainThreads > 0 && dataWorkers > 0) {
    p.compute = trainThreads, p.workers = dataWorkers;
  } else if (trainThreads > 0) {
    p.compute = trainThreads, p.workers = std::max(1, p.share - trainThreads);
  } else if (dataWorkers > 0) {
    p.workers = dataWorkers, p.compute = std::max(1, p.share - dataWorkers);
  } else if (cudaModel) {
    p.compute = 1, p.workers = std::max(1, p.share - 1);
  } else {
    p.workers = std::max(1, (p.share + 2) / 4);
    p.compute = std::max(1, p.share - p.workers);
  }
  return p;
}

std::string ThreadPlan::describe() const {
  return "threads: " + std::to_string(compute) + " compute + " + std::to_string(workers) +
         " stream worker" + (workers == 1 ? "" : "s") + " per rank (affinity: " +
         std::to_string(maskCores) + " of " + std::to_string(nodeCores) + " cores" +
         (sharedMask ? ", shared by " + std::to_string(localRanks) + " local ranks" : "") + ")";
}

ThreadPlan threadPlanFor(const TrainSettings& train, const DataSettings& data, bool cudaModel,
                         int localRanks) {
  cpu_set_t set;
  int mask = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) mask = CPU_COUNT(&set);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  const int node = online > 0 ? static_cast<int>(online) : static_cast<int>(std::thread::hardware_concurrency());
  if (mask <= 0) mask = node;
  return planThreads(train.threads, data.workers, mask, node, localRanks, cudaModel);
}


}  // namespace slidetrain
