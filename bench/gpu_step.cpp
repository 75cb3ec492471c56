// bench_gpu_step: the measurements of launch/gpu_check.sh (see docs/benchmarks.md, "GPU check").
// Each mode prints one line of key=value pairs (the script collects them into its JSON). Every
// training mode times the trainer's own TrainStep (bench/BenchTrainStep.h).
//
//   compare   [--steps 50] [--device cuda]
//       small_cnn trained from one seed with the same batches (64 px, batch 32, SGD momentum 0.9,
//       SyncBatchNorm on) on the CPU and on --device, TF32 off (recorded); max_abs_weight_diff
//       over parameters and buffers at the end.
//   synthetic [--model resnet50] [--size 224] [--batch 64] [--steps 20] [--amp off|fp16|bf16]
//             [--sync on|off]
//       training steps on one random uint8 batch in pinned memory: images/s (median step).
//   stream    --cohort CSV --cache DIR [same options]
//       training steps on patches streamed from the cohort's slides (PatchStream, pinned uint8
//       batches): images/s over the loop and the share spent waiting for data.
//   nosync    [--device cuda] [--amp off|bf16]
//       5 training steps (small_cnn, SyncBatchNorm on, pinned batches) under c10's CUDA sync
//       debug mode "error" after 3 warm-up steps: any host-device synchronisation in the step
//       throws, naming the call. host_syncs=0 when none; skipped without CUDA.
//   sbn       --dir DIR [--device cuda]   (mpirun -np 2, or 1)
//       SyncBatchNorm forward + backward on this rank's share of the batch in DIR/x.bin against
//       bench/sbn_reference.py's torch.nn.SyncBatchNorm on the whole batch (DIR/*_ref.bin), in
//       float32 contiguous and channels_last: the largest differences of the output, the input,
//       weight and bias gradients and the running statistics (over max(1, the reference's largest
//       magnitude)), max_abs_diff the largest of them (gpu_check wants <= 1e-5).
//
// On CUDA the timed region is bracketed by device synchronisations.
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
#ifdef SLIDETRAIN_TORCH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif
#include <torch/types.h>
#include <torch/utils.h>

#include "bench/BenchTrainStep.h"
#include "distributed/GradSync.h"
#include "distributed/MpiComm.h"
#include "distributed/SyncBatchNorm.h"
#include "distributed/Sampler.h"
#include "src/data/BatchTensor.h"
#include "src/runtime/Runtime.h"
#include "src/config/Settings.h"
#include "src/data/SplitData.h"
#include "src/data/StreamOptions.h"
#include "wsi/Cohort.h"
#include "wsi/PatchStream.h"

using namespace slidetrain;
using bench::BenchTrainer;

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

void setTf32(bool on) {
  at::globalContext().setAllowTF32CuBLAS(on);
  at::globalContext().setAllowTF32CuDNN(on);
}

/// A batch whose pixels live in memory from pixelAllocatorFor(device) (pinned for a GPU).
wsi::Batch onDeviceAllocator(const wsi::Batch& b, const at::Device& device) {
  wsi::Batch out = b;
  out.pixels.allocate(b.pixels.size(), pixelAllocatorFor(device));
  std::copy(b.pixels.data(), b.pixels.data() + b.pixels.size(), out.pixels.data());
  return out;
}

int compare(const Args& a, const at::Device& device) {
  const int steps = a.num("steps", 50);
  // TF32 would make the comparison measure TF32's 10-bit mantissa, not the code.
  setTf32(false);
  BenchTrainer cpu("small_cnn", 64, 32, "off", true, dist::makePlanes("auto", at::Device(at::kCPU)));
  BenchTrainer dev("small_cnn", 64, 32, "off", true, dist::makePlanes(a.get("backend", "auto"), device), device);
  for (int i = 0; i < steps; ++i) {
    const wsi::Batch b = bench::randomBatch(32, 64, static_cast<uint32_t>(i + 1));
    cpu.run(b);
    dev.run(b);
  }
  sync(device);
  std::printf("mode=compare steps=%d device=%s tf32=off max_abs_weight_diff=%.3g\n", steps,
              device.str().c_str(), maxAbsDiff(*cpu.model, *dev.model));
  return 0;
}

double medianRate(std::vector<double> times, int batch) {
  std::nth_element(times.begin(), times.begin() + long(times.size() / 2), times.end());
  return double(batch) / times[times.size() / 2];
}

int synthetic(const Args& a, const at::Device& device) {
  const std::string model = a.get("model", "resnet50"), amp = a.get("amp", "off");
  const int size = a.num("size", 224), batch = a.num("batch", 64), steps = a.num("steps", 20);
  const bool syncBn = a.get("sync", "on") == "on";
  BenchTrainer t(model, size, batch, amp, syncBn, dist::makePlanes(a.get("backend", "auto"), device), device);
  const wsi::Batch b = onDeviceAllocator(bench::randomBatch(batch, size, 1), device);
  for (int i = 0; i < 3; ++i) t.run(b);  // warm-up: cuDNN algorithm choice, allocator
  sync(device);
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    t.run(b);
    sync(device);
    times.push_back(since(t0));
  }
  std::printf("mode=synthetic model=%s size=%d batch=%d amp=%s sync_batchnorm=%s device=%s images_per_s=%.2f "
              "skipped_steps=%lld\n",
              model.c_str(), size, batch, amp.c_str(), syncBn ? "on" : "off", device.str().c_str(),
              medianRate(times, batch), static_cast<long long>(t.skipped));
  return 0;
}

int stream(const Args& a, const at::Device& device) {
  const std::string model = a.get("model", "resnet50");
  const int size = a.num("size", 224), batch = a.num("batch", 64), steps = a.num("steps", 20);
  const std::string amp = a.get("amp", "off");
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
  BenchTrainer s(model, size, batch, amp, a.get("sync", "on") == "on",
                 dist::makePlanes(a.get("backend", "auto"), device), device);
  for (int i = 0; i < 3; ++i) s.run(*ps.next());  // warm-up
  sync(device);
  const wsi::StreamStats before = ps.stats();
  const auto t0 = std::chrono::steady_clock::now();
  int64_t images = 0;
  while (auto b = ps.next()) {
    s.run(*b);
    images += static_cast<int64_t>(b->count());
  }
  sync(device);
  const double seconds = since(t0);
  const double wait = ps.stats().waitSeconds - before.waitSeconds;
  std::printf("mode=stream model=%s size=%d batch=%d amp=%s device=%s patches=%zu images_per_s=%.2f data_wait_pct=%.1f workers=%d\n",
              model.c_str(), size, batch, amp.c_str(), device.str().c_str(), data.samples.size(),
              double(images) / seconds, 100 * wait / seconds, so.workers);
  return 0;
}

int noHostSync(const Args& a, const at::Device& device) {
  const std::string amp = a.get("amp", "off");
#ifdef SLIDETRAIN_TORCH_CUDA
  if (!device.is_cuda()) {
    std::printf("mode=nosync device=%s result=skipped (CUDA only)\n", device.str().c_str());
    return 0;
  }
  BenchTrainer t("small_cnn", 64, 32, amp, true, dist::makePlanes(a.get("backend", "auto"), device), device);
  const wsi::Batch b = onDeviceAllocator(bench::randomBatch(32, 64, 1), device);
  for (int i = 0; i < 3; ++i) t.run(b);  // warm-up: cuDNN's algorithm search, the allocators
  sync(device);
  auto& warn = c10::cuda::warning_state();
  warn.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_ERROR);
  try {
    for (int i = 0; i < 5; ++i) t.run(b);
  } catch (const std::exception& e) {
    warn.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    std::printf("mode=nosync device=%s amp=%s host_syncs=1 first=\"%s\"\n", device.str().c_str(), amp.c_str(),
                what.c_str());
    return 1;
  }
  warn.set_sync_debug_mode(c10::cuda::SyncDebugMode::L_DISABLED);
  sync(device);
  std::printf("mode=nosync device=%s amp=%s steps=5 host_syncs=0\n", device.str().c_str(), amp.c_str());
  return 0;
#else
  (void)a;
  std::printf("mode=nosync device=%s amp=%s result=skipped (no CUDA libtorch)\n", device.str().c_str(), amp.c_str());
  return 0;
#endif
}

/// float32 values of DIR/name.bin with `shape`.
at::Tensor readFloats(const std::string& dir, const std::string& name, std::vector<int64_t> shape) {
  const std::string path = dir + "/" + name + ".bin";
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("sbn: cannot open " + path + " (bench/sbn_reference.py writes it)");
  at::Tensor t = at::empty(shape, at::kFloat);
  const size_t n = static_cast<size_t>(t.numel());
  const size_t got = std::fread(t.data_ptr<float>(), sizeof(float), n, f);
  std::fclose(f);
  if (got != n) throw std::runtime_error("sbn: " + path + " holds " + std::to_string(got) + " floats, expected " + std::to_string(n));
  return t;
}

/// Largest |a - ref| over max(1, largest |ref|): an absolute difference for values up to 1, a
/// relative one for larger (the weight gradient sums 1152 products and reaches ~100).
double maxDiffOf(const at::Tensor& a, const at::Tensor& ref) {
  const at::Tensor r = ref.to(at::kCPU, at::kDouble);
  const double scale = std::max(1.0, r.abs().max().item<double>());
  return (a.to(at::kCPU, at::kDouble) - r).abs().max().item<double>() / scale;
}

int syncBatchNormVsTorch(const Args& a, const at::Device& device) {
  const std::string dir = a.get("dir", "");
  // The reference's geometry (bench/sbn_reference.py): N x C x H x W, eps 1e-5, momentum 0.1.
  const int64_t n = 8, c = 16, h = 12, w = 12;
  const at::Tensor x = readFloats(dir, "x", {n, c, h, w}), gy = readFloats(dir, "gy", {n, c, h, w});
  const at::Tensor weight = readFloats(dir, "w", {c}), bias = readFloats(dir, "b", {c});
  // Two ranks on one GPU: the MPI device plane on CUDA tensors (NCCL refuses two ranks per GPU).
  const dist::Planes planes = dist::makePlanes(a.get("backend", "mpi"), device);
  const int world = planes.size(), rank = planes.rank();
  if (n % world != 0) throw std::runtime_error("sbn: world size must divide " + std::to_string(n));
  const int64_t share = n / world;
  double worst = 0;
  for (const char* format : {"contiguous", "channels_last"}) {
    dist::SyncBatchNorm sbn(dist::SyncBatchNormOptions{c, 1e-5, 0.1}, planes.device);
    sbn->to(device);
    {
      torch::NoGradGuard ng;
      sbn->weight.copy_(weight);
      sbn->bias.copy_(bias);
    }
    at::Tensor xr = x.narrow(0, rank * share, share).to(device);
    if (std::string(format) == "channels_last") xr = xr.contiguous(at::MemoryFormat::ChannelsLast);
    xr.requires_grad_(true);
    const at::Tensor y = sbn->forward(xr);
    (y * gy.narrow(0, rank * share, share).to(device)).sum().backward();
    // The whole batch's output and input gradient, the summed weight and bias gradients.
    const at::Tensor yAll = planes.host->allGather(y.detach().to(at::kCPU).contiguous()).reshape({n, c, h, w});
    const at::Tensor dxAll = planes.host->allGather(xr.grad().to(at::kCPU).contiguous()).reshape({n, c, h, w});
    at::Tensor dw = sbn->weight.grad().to(at::kCPU).clone(), db = sbn->bias.grad().to(at::kCPU).clone();
    planes.host->allReduce(dw, dist::ReduceOp::Sum);
    planes.host->allReduce(db, dist::ReduceOp::Sum);
    const double dy = maxDiffOf(yAll, readFloats(dir, "y_ref", {n, c, h, w}));
    const double ddx = maxDiffOf(dxAll, readFloats(dir, "dx_ref", {n, c, h, w}));
    const double ddw = maxDiffOf(dw, readFloats(dir, "dw_ref", {c})), ddb = maxDiffOf(db, readFloats(dir, "db_ref", {c}));
    const double drm = maxDiffOf(sbn->running_mean, readFloats(dir, "rm_ref", {c}));
    const double drv = maxDiffOf(sbn->running_var, readFloats(dir, "rv_ref", {c}));
    const bool layoutKept = std::string(format) == "contiguous" || y.is_contiguous(at::MemoryFormat::ChannelsLast);
    worst = std::max({worst, dy, ddx, ddw, ddb, drm, drv});
    if (rank == 0)
      std::printf("sbn format=%s world=%d device=%s y=%.3g dx=%.3g dw=%.3g db=%.3g running_mean=%.3g running_var=%.3g "
                  "layout_kept=%d\n", format, world, device.str().c_str(), dy, ddx, ddw, ddb, drm, drv, layoutKept ? 1 : 0);
  }
  if (rank == 0) std::printf("mode=sbn world=%d device=%s max_abs_diff=%.3g\n", world, device.str().c_str(), worst);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_gpu_step compare|synthetic|stream|sbn|nosync [--key value ...] (see the source header)\n");
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
    keepFreedMemory();  // as slidetrain's verbs do (startRuntime)
    at::set_num_threads(a.num("threads", 4));
    const at::Device device = chooseDevice(a.get("device", "auto"), 0);
    const std::string mode = argv[1];
    if (mode == "compare") return compare(a, device);
    if (mode == "synthetic") return synthetic(a, device);
    if (mode == "stream") return stream(a, device);
    if (mode == "sbn") return syncBatchNormVsTorch(a, device);
    if (mode == "nosync") return noHostSync(a, device);
    std::fprintf(stderr, "bench_gpu_step: unknown mode '%s'\n", mode.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu_step: error: %s\n", e.what());
    return 1;
  }
}
