// bench_gpu_step: the measurements of launch/gpu_check.sh (see docs/benchmarks.md, "GPU check").
// Each mode prints one line of key=value pairs (the script collects them into its JSON).
//
//   compare   [--steps 50] [--device cuda]
//       small_cnn trained from one seed with the same batches (64 px, batch 32, SGD momentum 0.9)
//       on the CPU and on --device; max_abs_weight_diff over parameters and buffers at the end.
//   synthetic [--model resnet50] [--size 224] [--batch 64] [--steps 20] [--amp off|fp16|bf16]
//       training steps on random tensors already on the device: images/s (median step).
//   stream    --cohort CSV --cache DIR [same options]
//       training steps on patches streamed from the cohort's slides (PatchStream, pinned uint8
//       batches, batchToDevice): images/s over the loop and the share spent waiting for data.
//
// The step is the trainer's: forward under AutocastScope, cross-entropy in float32, fp16 with
// the LossScaler (unscale, skip on inf, update), SGD with momentum 0.9. On CUDA the timed region
// is bracketed by device synchronisations.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "bench/BenchStep.h"
#include "distributed/MpiComm.h"
#include "distributed/Sampler.h"
#include "src/data/BatchTensor.h"
#include "src/runtime/Runtime.h"
#include "src/config/Settings.h"
#include "src/data/SplitData.h"
#include "src/data/StreamOptions.h"
#include "wsi/Cohort.h"
#include "wsi/PatchStream.h"

using namespace slidetrain;
using bench::Stepper;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void sync(const at::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

struct Args {
  std::map<std::string, std::string> kv;
  std::string get(const std::string& k, const std::string& def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  int num(const std::string& k, int def) const { return std::atoi(get(k, std::to_string(def)).c_str()); }
};

double maxAbsDiff(Model& a, Model& b) {
  double worst = 0;
  auto pb = b.named_parameters();
  for (auto& p : a.named_parameters())
    worst = std::max(worst, (p.value().cpu().to(at::kDouble) - pb[p.key()].cpu().to(at::kDouble)).abs().max().item<double>());
  auto bb = b.named_buffers();
  for (auto& p : a.named_buffers())
    if (at::isFloatingType(p.value().scalar_type()))
      worst = std::max(worst, (p.value().cpu().to(at::kDouble) - bb[p.key()].cpu().to(at::kDouble)).abs().max().item<double>());
  return worst;
}

int compare(const Args& a, const at::Device& device) {
  const int steps = a.num("steps", 50);
  Stepper cpu("small_cnn", 64, AmpMode::Off, at::kCPU), dev("small_cnn", 64, AmpMode::Off, device);
  torch::manual_seed(1);
  for (int i = 0; i < steps; ++i) {
    const at::Tensor x = torch::randn({32, 3, 64, 64}), y = torch::randint(0, 2, {32}, at::kLong);
    cpu.step(x, y);
    dev.step(x.to(device), y.to(device));
  }
  sync(device);
  std::printf("mode=compare steps=%d device=%s max_abs_weight_diff=%.3g\n", steps,
              device.str().c_str(), maxAbsDiff(*cpu.model, *dev.model));
  return 0;
}

double medianRate(std::vector<double> times, int batch) {
  std::nth_element(times.begin(), times.begin() + long(times.size() / 2), times.end());
  return double(batch) / times[times.size() / 2];
}

int synthetic(const Args& a, const at::Device& device) {
  const std::string model = a.get("model", "resnet50");
  const int size = a.num("size", 224), batch = a.num("batch", 64), steps = a.num("steps", 20);
  const AmpMode amp = parseAmpMode(a.get("amp", "off"));
  Stepper s(model, size, amp, device);
  const at::Tensor x = torch::randn({batch, 3, size, size}).to(device);
  const at::Tensor y = torch::randint(0, 2, {batch}, at::kLong).to(device);
  for (int i = 0; i < 3; ++i) s.step(x, y);  // warm-up: cuDNN algorithm choice, allocator
  sync(device);
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    s.step(x, y);
    sync(device);
    times.push_back(since(t0));
  }
  std::printf("mode=synthetic model=%s size=%d batch=%d amp=%s device=%s images_per_s=%.2f skipped_steps=%lld\n",
              model.c_str(), size, batch, ampModeName(amp), device.str().c_str(),
              medianRate(times, batch), static_cast<long long>(s.skipped));
  return 0;
}

int stream(const Args& a, const at::Device& device) {
  const std::string model = a.get("model", "resnet50");
  const int size = a.num("size", 224), batch = a.num("batch", 64), steps = a.num("steps", 20);
  const AmpMode amp = parseAmpMode(a.get("amp", "off"));
  const Settings cfg = Settings::defaults({"cohort=" + a.get("cohort", ""), "cache_dir=" + a.get("cache", ""),
                      "tiling.level=0", "tiling.patch_size=" + std::to_string(size),
                      "tiling.min_tissue=0.3", "data.workers=" + std::to_string(a.num("workers", 8))});
  const wsi::Cohort cohort = wsi::Cohort::read(cfg.run.cohort);
  auto host = dist::makeComm("mpi");
  SplitData data = prepareSplit(cfg.tiling, cohort, "train", *host);
  if (data.samples.size() < static_cast<size_t>(batch))
    throw std::runtime_error("stream: the cohort has only " + std::to_string(data.samples.size()) +
                             " patches; need at least one batch of " + std::to_string(batch));
  // Enough passes over a shuffled order for warm-up + `steps` batches.
  std::vector<std::vector<wsi::PatchRequest>> batches;
  for (int64_t epoch = 0; static_cast<int>(batches.size()) < steps + 3; ++epoch) {
    const std::vector<int64_t> order = dist::globalOrder(static_cast<int64_t>(data.samples.size()), 7, epoch);
    for (size_t i = 0; i + batch <= order.size() && static_cast<int>(batches.size()) < steps + 3; i += batch) {
      std::vector<wsi::PatchRequest> b;
      for (size_t k = i; k < i + batch; ++k) b.push_back(data.samples[static_cast<size_t>(order[k])]);
      batches.push_back(std::move(b));
    }
  }
  wsi::StreamOptions so = streamOptions(cfg.data, cfg.run.skipBadSlides,
                                       threadPlanFor(cfg.train, cfg.data, device.is_cuda(), 1).workers);
  so.pixelAllocator = pixelAllocatorFor(device);
  wsi::PatchStream ps(data.paths, so, {}, data.slideOptions);
  ps.start(batches);
  Stepper s(model, size, amp, device);
  const Normalization norm;
  for (int i = 0; i < 3; ++i) {  // warm-up
    auto b = ps.next();
    s.step(batchToDevice(*b, norm, device), labelsToTensor(*b).to(device));
  }
  sync(device);
  const wsi::StreamStats before = ps.stats();
  const auto t0 = std::chrono::steady_clock::now();
  int64_t images = 0;
  while (auto b = ps.next()) {
    s.step(batchToDevice(*b, norm, device), labelsToTensor(*b).to(device));
    images += static_cast<int64_t>(b->count());
  }
  sync(device);
  const double seconds = since(t0);
  const double wait = ps.stats().waitSeconds - before.waitSeconds;
  std::printf("mode=stream model=%s size=%d batch=%d amp=%s device=%s patches=%zu images_per_s=%.2f data_wait_pct=%.1f workers=%d\n",
              model.c_str(), size, batch, ampModeName(amp), device.str().c_str(), data.samples.size(),
              double(images) / seconds, 100 * wait / seconds, so.workers);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_gpu_step compare|synthetic|stream [--key value ...] (see the source header)\n");
    return 2;
  }
  Args a;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strncmp(argv[i], "--", 2) != 0) {
      std::fprintf(stderr, "bench_gpu_step: expected --key value, got '%s'\n", argv[i]);
      return 2;
    }
    a.kv[argv[i] + 2] = argv[i + 1];
  }
  try {
    at::set_num_threads(a.num("threads", 4));
    const at::Device device = chooseDevice(a.get("device", "auto"), 0);
    const std::string mode = argv[1];
    if (mode == "compare") return compare(a, device);
    if (mode == "synthetic") return synthetic(a, device);
    if (mode == "stream") return stream(a, device);
    std::fprintf(stderr, "bench_gpu_step: unknown mode '%s'\n", mode.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu_step: error: %s\n", e.what());
    return 1;
  }
}
