#pragma once
// "GPU busy": the share of time a kernel ran on a CUDA device, as nvidia-smi's utilization.gpu
// (and torch.cuda.utilization()). NVML (libnvidia-ml.so.1, installed with the NVIDIA driver) is
// opened at run time with dlopen, so a CPU build and a machine without a driver need nothing:
// the meter then says why it has no figure. A thread samples the device every `periodMs`; the
// trainer starts a window before each epoch's pass and reads its mean after it
// (metrics.jsonl "gpu_busy_pct" and per rank in "ranks", docs/training.md).
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace slidetrain {

/// The NVML device of CUDA device `cudaIndex` of this process, whose CUDA_VISIBLE_DEVICES is
/// `visibleDevices` (nullptr: unset), as torch.cuda does it: "index:N" (NVML index) or
/// "uuid:GPU-..." (a UUID entry, or its prefix, matched by the caller against the devices' UUIDs).
/// Throws std::invalid_argument when the variable does not list device `cudaIndex`.
std::string nvmlDeviceFor(int cudaIndex, const char* visibleDevices);

class GpuBusyMeter {
 public:
  /// Opens `library` and samples CUDA device `cudaIndex` (CUDA_VISIBLE_DEVICES is read here).
  /// Never throws: a missing library, a failed nvmlInit or an unknown device leave the meter
  /// unavailable, with why().
  explicit GpuBusyMeter(int cudaIndex, int periodMs = 100, const std::string& library = "libnvidia-ml.so.1");
  ~GpuBusyMeter();
  GpuBusyMeter(const GpuBusyMeter&) = delete;
  GpuBusyMeter& operator=(const GpuBusyMeter&) = delete;

  bool available() const { return available_; }
  /// Why there is no figure ("" when available), naming the library or the NVML call.
  const std::string& why() const { return why_; }
  /// Starts a new window: the samples before now no longer count.
  void restart();
  /// The mean of the window's samples in percent (0..100); NaN when unavailable or no sample yet.
  double windowMeanPct();

 private:
  void sampleLoop();

  struct Nvml;
  std::unique_ptr<Nvml> nvml_;
  bool available_ = false;
  std::string why_;
  int periodMs_;
  std::mutex mutex_;
  double sum_ = 0;
  long count_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace slidetrain
