// GpuBusyMeter: see GpuBusy.h.
#include "src/runtime/GpuBusy.h"

#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace slidetrain {
namespace {

// The few NVML declarations the meter uses (nvml.h, stable since NVML 2.285): the library is
// opened at run time, so no header or link dependency.
using NvmlReturn = int;  // nvmlReturn_t; 0 is NVML_SUCCESS
using NvmlDevice = void*;  // nvmlDevice_t
struct NvmlUtilization {
  unsigned int gpu, memory;
};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

}  // namespace

std::string nvmlDeviceFor(int cudaIndex, const char* visibleDevices) {
  if (cudaIndex < 0) throw std::invalid_argument("CUDA device index " + std::to_string(cudaIndex) + " < 0");
  if (!visibleDevices) return "index:" + std::to_string(cudaIndex);
  // As the CUDA runtime reads it: entries up to the first one that is not a device (a negative
  // or malformed number ends the list); an entry starting with GPU- or MIG- is a UUID (prefix).
  std::vector<std::string> entries;
  std::stringstream in(visibleDevices);
  for (std::string e; std::getline(in, e, ',');) {
    e = trim(e);
    if (e.rfind("GPU-", 0) == 0 || e.rfind("MIG-", 0) == 0) {
      entries.push_back("uuid:" + e);
      continue;
    }
    char* end = nullptr;
    const long v = e.empty() ? -1 : std::strtol(e.c_str(), &end, 10);
    if (e.empty() || *end != '\0' || v < 0) break;
    entries.push_back("index:" + std::to_string(v));
  }
  if (static_cast<size_t>(cudaIndex) >= entries.size())
    throw std::invalid_argument("CUDA_VISIBLE_DEVICES=\"" + std::string(visibleDevices) + "\" lists " +
                                std::to_string(entries.size()) + " device(s), not CUDA device " +
                                std::to_string(cudaIndex));
  return entries[static_cast<size_t>(cudaIndex)];
}

struct GpuBusyMeter::Nvml {
  void* lib = nullptr;
  bool initialised = false;
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  const char* (*errorString)(NvmlReturn) = nullptr;
  NvmlReturn (*count)(unsigned int*) = nullptr;
  NvmlReturn (*byIndex)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*uuid)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlDevice device = nullptr;

  std::string error(const char* call, NvmlReturn r) const {
    return std::string(call) + " failed: " + (errorString ? errorString(r) : "error " + std::to_string(r));
  }
  ~Nvml() {
    if (initialised && shutdown) shutdown();
    if (lib) dlclose(lib);
  }
};

GpuBusyMeter::GpuBusyMeter(int cudaIndex, int periodMs, const std::string& library)
    : nvml_(std::make_unique<Nvml>()), periodMs_(periodMs) {
  Nvml& n = *nvml_;
  n.lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!n.lib) {
    const char* e = dlerror();
    why_ = "cannot open " + library + " (NVML, installed with the NVIDIA driver): " + (e ? e : "unknown error");
    return;
  }
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(n.lib, name));
    if (!fn && why_.empty()) why_ = library + " has no " + name;
  };
  sym(n.init, "nvmlInit_v2");
  sym(n.shutdown, "nvmlShutdown");
  sym(n.errorString, "nvmlErrorString");
  sym(n.count, "nvmlDeviceGetCount_v2");
  sym(n.byIndex, "nvmlDeviceGetHandleByIndex_v2");
  sym(n.uuid, "nvmlDeviceGetUUID");
  sym(n.utilization, "nvmlDeviceGetUtilizationRates");
  if (!why_.empty()) return;
  if (NvmlReturn r = n.init(); r != 0) {
    why_ = n.error("nvmlInit_v2", r);
    return;
  }
  n.initialised = true;
  std::string which;
  try {
    which = nvmlDeviceFor(cudaIndex, std::getenv("CUDA_VISIBLE_DEVICES"));
  } catch (const std::invalid_argument& e) {
    why_ = e.what();
    return;
  }
  if (which.rfind("index:", 0) == 0) {
    if (NvmlReturn r = n.byIndex(static_cast<unsigned>(std::stoul(which.substr(6))), &n.device); r != 0) {
      why_ = n.error(("nvmlDeviceGetHandleByIndex_v2(" + which.substr(6) + ")").c_str(), r);
      return;
    }
  } else {  // the device whose UUID starts with the entry, as CUDA matches it
    const std::string prefix = which.substr(5);
    unsigned int devices = 0;
    if (NvmlReturn r = n.count(&devices); r != 0) {
      why_ = n.error("nvmlDeviceGetCount_v2", r);
      return;
    }
    for (unsigned int i = 0; i < devices && !n.device; ++i) {
      NvmlDevice d = nullptr;
      char id[96] = {0};
      if (n.byIndex(i, &d) == 0 && n.uuid(d, id, sizeof id) == 0 && std::string(id).rfind(prefix, 0) == 0)
        n.device = d;
    }
    if (!n.device) {
      why_ = "no NVML device has the UUID " + prefix + " of CUDA_VISIBLE_DEVICES";
      return;
    }
  }
  NvmlUtilization u{};
  if (NvmlReturn r = n.utilization(n.device, &u); r != 0) {
    why_ = n.error("nvmlDeviceGetUtilizationRates", r);  // e.g. a MIG instance: not supported
    return;
  }
  available_ = true;
  thread_ = std::thread([this] { sampleLoop(); });
}

GpuBusyMeter::~GpuBusyMeter() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void GpuBusyMeter::sampleLoop() {
  while (!stop_) {
    NvmlUtilization u{};
    if (nvml_->utilization(nvml_->device, &u) == 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      sum_ += u.gpu;
      ++count_;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(periodMs_));
  }
}

void GpuBusyMeter::restart() {
  std::lock_guard<std::mutex> lock(mutex_);
  sum_ = 0;
  count_ = 0;
}

double GpuBusyMeter::windowMeanPct() {
  std::lock_guard<std::mutex> lock(mutex_);
  return count_ > 0 ? sum_ / static_cast<double>(count_) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace slidetrain
