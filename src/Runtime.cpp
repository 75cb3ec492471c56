// Runtime: see Runtime.h.
#include "src/Runtime.h"

#include <cstdio>
#include <cstdlib>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include "distributed/MpiComm.h"
#include "src/Errors.h"
#include "src/Trainer.h"

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

dist::Planes startRuntime(const Config& cfg) {
  dist::ensureMpiInitialized();
  const ThreadPlan threads = threadPlanFor(cfg, dist::localSize());
  at::set_num_threads(threads.compute);
  if (dist::worldRank() == 0) std::printf("%s\n", threads.describe().c_str());
  setDeterministic(cfg.getBool("train.deterministic"));
  const c10::Device device = chooseDevice(cfg.getString("train.device"), dist::localRank());
  dist::CommOptions co;
  co.timeout = std::chrono::milliseconds(static_cast<int64_t>(cfg.getFloat("train.timeout_s") * 1000));
  return dist::makePlanes(cfg.getString("train.backend"), device, co);
}

}  // namespace slidetrain
