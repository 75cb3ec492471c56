// bench_train_step: images/s of the trainer's own training step (TrainStep, what `slidetrain
// train` runs; bench/BenchTrainStep.h) against PyTorch (Python) in the same run, with
// SyncBatchNorm on and off, then the data-wait share when the patches are streamed from slides.
// One process (world size 1: SyncBatchNorm on takes the synchronised path without collectives;
// run it without mpirun).
//
//   1. Train step on a random uint8 batch: slidetrain's zoo model (buildModel) in TrainStep -
//      batch conversion, forward, the trainer's loss, backward with GradSync, SGD with momentum
//      0.9 - with train.sync_batchnorm true (the default) and false, against bench/train_step.py
//      (the same model written in PyTorch, tools/reference_models.py, plain BatchNorm, the same
//      uint8 -> float conversion per step) run as a subprocess with the same batch, input size,
//      steps and threads (torch.set_num_threads). Every side times every step and reports batch /
//      median step time; rounds alternate slidetrain (on, off) / Python and the best round of
//      each is reported (the machine is shared, so the best is the least disturbed one).
//        small_cnn: batch 32 at 64 px;  resnet18: batch 16 at 112 px (224 px is too slow on 2
//        cores for a quick bench; the ratio is what matters).
//   2. Streamed: a synthetic cohort (wsi::synthesizeCohort, cached) is tiled with src/Tiling
//      (128-px patches at level 0), shuffled, and streamed with wsi::PatchStream (default
//      workers, default augmentation) into 40 small_cnn TrainStep steps of 32. Prints
//      the share of the step loop spent waiting for data (target < 5 %).
//
// usage: bench_train_step [--threads N] [--rounds R] [--python PATH] [--cache DIR]
//                         [--only small_cnn|resnet18|stream] [--steps N]
// --threads defaults to 1: on the shared 2-core build VM, 2 OpenMP threads that spin-wait
// against other jobs made single timings swing by up to 8x; set it to the cores you own.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "bench/BenchTrainStep.h"
#include "distributed/Planes.h"
#include "distributed/Sampler.h"
#include "src/data/BatchTensor.h"
#include "src/train/Loss.h"
#include "src/models/ModelZoo.h"
#include "src/train/Optim.h"
#include "src/config/Settings.h"
#include "src/data/StreamOptions.h"
#include "src/data/Tiling.h"
#include "src/runtime/Runtime.h"
#include "wsi/Augment.h"
#include "wsi/Cohort.h"
#include "wsi/PatchStream.h"
#include "wsi/SynthCohort.h"

using namespace slidetrain;
using bench::BenchTrainer;
namespace fs = std::filesystem;

namespace {

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Case {
  std::string model;
  int batch, size, steps, warmup;
};

double cppImagesPerSecond(const Case& c, bool syncBatchnorm, const dist::Planes& planes) {
  BenchTrainer t(c.model, c.size, c.batch, "off", syncBatchnorm, planes);
  const wsi::Batch b = bench::randomBatch(c.batch, c.size, 1);
  for (int i = 0; i < c.warmup; ++i) t.run(b);
  std::vector<double> times;
  for (int i = 0; i < c.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    t.run(b);
    times.push_back(since(t0));
  }
  // Median step time, as bench/train_step.py: robust to other jobs on a shared machine.
  std::nth_element(times.begin(), times.begin() + long(times.size() / 2), times.end());
  return double(c.batch) / times[times.size() / 2];
}

/// Runs bench/train_step.py; returns its images/s, or -1 (with the reason printed).
double pythonImagesPerSecond(const Case& c, const std::string& python, int threads) {
  // Next to this source file (CMake compiles it by its absolute path).
  const std::string script = (fs::path(__FILE__).parent_path() / "train_step.py").string();
  const std::string cmd = python + " " + script + " --model " + c.model + " --batch " +
                          std::to_string(c.batch) + " --size " + std::to_string(c.size) +
                          " --steps " + std::to_string(c.steps) + " --warmup " +
                          std::to_string(c.warmup) + " --threads " + std::to_string(threads) +
                          " --uint8 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int rc = pclose(p);
  const auto at = out.rfind("images_per_s=");
  if (rc != 0 || at == std::string::npos) {
    std::fprintf(stderr, "python baseline failed (%s):\n%s\n", cmd.c_str(), out.c_str());
    return -1;
  }
  return std::atof(out.c_str() + at + std::strlen("images_per_s="));
}

void trainStepBench(const Case& c, const std::string& python, int threads, int rounds,
                    const dist::Planes& planes) {
  double on = 0, off = 0, py = 0;
  for (int r = 0; r < rounds; ++r) {
    const double a = cppImagesPerSecond(c, true, planes);
    const double b = cppImagesPerSecond(c, false, planes);
    const double p = pythonImagesPerSecond(c, python, threads);
    std::printf("  %-9s round %d: slidetrain SyncBatchNorm %8.1f img/s, BatchNorm %8.1f img/s   "
                "PyTorch (Python) %8.1f img/s\n", c.model.c_str(), r + 1, a, b, p);
    std::fflush(stdout);
    on = std::max(on, a);
    off = std::max(off, b);
    py = std::max(py, p);
  }
  std::printf("%-9s batch %d @ %d px, %d threads: slidetrain %.1f img/s (SyncBatchNorm), %.1f img/s "
              "(BatchNorm), PyTorch %.1f img/s: ratio %.2fx and %.2fx (target >= 1.0x); "
              "SyncBatchNorm costs %+.1f %% over BatchNorm\n",
              c.model.c_str(), c.batch, c.size, threads, on, off, py, py > 0 ? on / py : 0.0,
              py > 0 ? off / py : 0.0, on > 0 ? 100 * (off / on - 1) : 0.0);
  std::fflush(stdout);
}

void streamBench(const std::string& cacheDir, int threads, const dist::Planes& planes) {
  // A small cohort (6 slides of 4096 x 3072 at 0.5 mpp), generated once.
  const std::string dir = cacheDir + "/train_step_cohort";
  if (!fs::exists(dir + "/cohort.csv")) {
    const auto t0 = std::chrono::steady_clock::now();
    wsi::SynthOptions so;
    so.numSlides = 6;
    so.seed = 5;
    wsi::synthesizeCohort(dir, so);
    std::printf("generated %s in %.1f s\n", dir.c_str(), since(t0));
  }
  const wsi::Cohort cohort = wsi::Cohort::read(dir + "/cohort.csv");
  const Settings cfg = Settings::defaults({"cache_dir=" + dir + "/cache", "tiling.patch_size=128"});
  const TilingSettings& ts = cfg.tiling;
  std::vector<size_t> all(cohort.slides.size());
  std::iota(all.begin(), all.end(), size_t(0));
  const auto tiles = tileCohort(cohort, all, ts, /*progress=*/false);

  std::vector<std::string> paths;
  std::vector<wsi::SlideOptions> slideOptions;
  std::vector<wsi::PatchRequest> samples;
  for (const auto& t : tiles) {
    if (!t.ok) continue;
    const auto& e = cohort.slides[t.cohortIndex];
    const int32_t k = static_cast<int32_t>(paths.size());
    paths.push_back(e.path);
    slideOptions.push_back(slideOptionsFor(e, ts));
    for (const auto& p : t.index.patches) {
      wsi::PatchRequest r;
      r.slide = k, r.x = p.x, r.y = p.y, r.level = t.index.options.level;
      r.size = t.index.options.size, r.readSize = t.index.readSide();
      r.label = p.label < 0 ? 0 : p.label, r.id = int64_t(samples.size());
      samples.push_back(r);
    }
  }
  std::mt19937_64 rng(1);
  std::shuffle(samples.begin(), samples.end(), rng);  // training reads in a random order
  const int batch = 32;
  std::vector<std::vector<wsi::PatchRequest>> batches;
  // 40 batches (1280 patches) of the ~1900: enough for a steady state, short on 2 cores.
  for (size_t i = 0; i + batch <= samples.size() && batches.size() < 40; i += batch)
    batches.emplace_back(samples.begin() + long(i), samples.begin() + long(i + batch));

  const wsi::AugmentOptions aug = cfg.augment;
  wsi::PatchTransform transform = [&aug](wsi::RgbImage& img, const wsi::PatchRequest& r) {
    if (aug.any()) wsi::augmentPatch(img, aug, dist::mixSeed(1, 0, uint64_t(r.id), 0xA06));
  };
  const wsi::StreamOptions streamOpts = streamOptions(
      cfg.data, cfg.run.skipBadSlides, threadPlanFor(cfg.train, cfg.data, false, 1).workers);
  std::printf("stream: %zu slides, %zu patches of 128 px (first %zu batches of %d), %d stream workers, "
              "%d torch threads, default augmentation\n",
              paths.size(), samples.size(), batches.size(), batch, streamOpts.workers, threads);

  BenchTrainer s("small_cnn", 128, batch, "off", true, planes);
  wsi::PatchStream stream(paths, streamOpts, transform, slideOptions);
  const auto t0 = std::chrono::steady_clock::now();
  double firstWait = 0, waitAfterFirst = 0;
  int64_t images = 0, n = 0;
  stream.start(std::move(batches));
  for (;;) {
    const auto w0 = std::chrono::steady_clock::now();
    auto b = stream.next();
    (n == 0 ? firstWait : waitAfterFirst) += since(w0);
    if (!b) break;
    s.run(*b);
    images += int64_t(b->count());
    ++n;
  }
  const double total = since(t0);
  const wsi::StreamStats st = stream.stats();
  std::printf("streamed small_cnn training: %lld images in %.2f s = %.1f img/s; data wait %.3f s "
              "= %.1f %% of the step loop (first batch %.3f s; after it %.1f %%), target < 5 %%; "
              "stream read %.0f patches/s\n",
              static_cast<long long>(images), total, images / total, st.waitSeconds,
              100.0 * st.waitSeconds / total, firstWait,
              100.0 * waitAfterFirst / std::max(1e-9, total - firstWait), st.patchesPerSecond());
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, rounds = 3, steps = 0;
  std::string python = "/usr/bin/python3", only, cacheDir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--rounds" && i + 1 < argc) rounds = std::atoi(argv[++i]);
    else if (a == "--python" && i + 1 < argc) python = argv[++i];
    else if (a == "--cache" && i + 1 < argc) cacheDir = argv[++i];
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--rounds R] [--python PATH] [--cache DIR] "
                           "[--only small_cnn|resnet18|stream] [--steps N]\n", argv[0]);
      return 2;
    }
  }
  if (cacheDir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    cacheDir = std::string(tmp && *tmp ? tmp : "/tmp") + "/slidetrain_bench";
  }
  at::set_num_threads(threads);
  std::printf("bench_train_step: %d torch threads (at::get_num_threads = %d), Python %s\n",
              threads, at::get_num_threads(), python.c_str());
  keepFreedMemory();  // as slidetrain's verbs do (startRuntime)
  const dist::Planes planes = dist::makePlanes("auto", at::Device(at::kCPU));
  if (planes.size() != 1) {
    std::fprintf(stderr, "bench_train_step: run it as one process (world size %d here)\n", planes.size());
    return 2;
  }
  std::vector<Case> cases = {{"small_cnn", 32, 64, 30, 3}, {"resnet18", 16, 112, 9, 2}};
  for (auto& c : cases)
    if (only.empty() || only == c.model) {
      if (steps > 0) c.steps = steps;
      trainStepBench(c, python, threads, rounds, planes);
    }
  if (only.empty() || only == "stream") streamBench(cacheDir, threads, planes);
  return 0;
}
