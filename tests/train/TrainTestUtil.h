#pragma once
// Shared by the trainer tests: a one-process communicator (a rank's local reference run), a tiny
// synthetic cohort tiled once per test process, and a small fast training config.
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include <ATen/ATen.h>

#include "distributed/Comm.h"
#include "src/config/Settings.h"
#include "src/data/SplitData.h"
#include "wsi/Cohort.h"
#include "wsi/SynthCohort.h"

namespace slidetrain::testutil {

/// World of one process without MPI: every collective is the identity.
class LocalComm : public dist::Comm {
 public:
  struct Done : dist::Work {
    void wait() override {}
    bool isCompleted() override { return true; }
  };
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void allReduce(at::Tensor&, dist::ReduceOp) override {}
  std::shared_ptr<dist::Work> allReduceAsync(at::Tensor, dist::ReduceOp) override {
    return std::make_shared<Done>();
  }
  void broadcast(at::Tensor&, int) override {}
  at::Tensor allGather(const at::Tensor& t) override { return t.unsqueeze(0).clone(); }
  void barrier() override {}
};

/// Synthesises 4 small slides under `dir`/c with splits: 3 train, 1 val (slide 0), and
/// patient ids p0, p0, p1, p2 (two slides of one patient). Call on one rank only.
inline void makeCohort(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  wsi::SynthOptions o;
  o.numSlides = 4;
  o.width = 768;
  o.height = 512;
  o.testFraction = 0;
  o.seed = 5;
  wsi::synthesizeCohort(dir + "/c", o);
  wsi::Cohort c = wsi::Cohort::read(dir + "/c/cohort.csv");
  for (size_t i = 0; i < c.slides.size(); ++i) {
    c.slides[i].split = i == 0 ? "val" : "train";
    c.slides[i].patientId = "p" + std::to_string(i == 0 ? 0 : i - 1);
  }
  c.write(dir + "/c/cohort.csv");
}

/// A config that trains small_cnn on 32-px patches quickly (48 patches per epoch: 16 per slide).
inline Settings smallConfig(const std::string& dir, const std::string& run) {
  return Settings::defaults({"cohort=" + dir + "/c/cohort.csv", "cache_dir=" + dir + "/cache",
                    "run_dir=" + dir + "/" + run, "seed=3", "tiling.level=0",
                    "tiling.patch_size=32", "train.batch_size=12", "train.threads=1",
                    "data.workers=2", "data.max_patches_per_slide=16", "train.progress=none",
                    "train.epochs=3", "optimizer.name=momentum", "optimizer.lr=0.02",
                    "predict.batch_size=64", "schedule.name=cosine"});
}

/// Largest difference over parameters and buffers (by name), relative to the magnitude of the
/// value where it is above 1: max |a - b| / max(1, |b|). Names the worst tensor in `where`.
inline double maxStateDiff(torch::nn::Module& a, torch::nn::Module& b, std::string* where = nullptr,
                           bool parameters = true, bool buffers = true) {
  double worst = 0;
  auto consider = [&](const std::string& name, const at::Tensor& x, const at::Tensor& y) {
    const at::Tensor xd = x.to(at::kDouble), yd = y.to(at::kDouble);
    const double d = ((xd - yd).abs() / yd.abs().clamp_min(1.0)).max().item<double>();
    if (d > worst) {
      worst = d;
      if (where) *where = name;
    }
  };
  auto pb = b.named_parameters();
  if (parameters)
    for (auto& p : a.named_parameters()) consider(p.key(), p.value(), pb[p.key()]);
  auto bb = b.named_buffers();
  if (buffers)
    for (auto& p : a.named_buffers()) consider(p.key(), p.value(), bb[p.key()]);
  return worst;
}

/// Bit-identical parameters and buffers.
inline bool sameState(torch::nn::Module& a, torch::nn::Module& b) {
  auto pb = b.named_parameters();
  for (auto& p : a.named_parameters())
    if (!at::equal(p.value(), pb[p.key()])) return false;
  auto bb = b.named_buffers();
  for (auto& p : a.named_buffers())
    if (!at::equal(p.value(), bb[p.key()])) return false;
  return true;
}

}  // namespace slidetrain::testutil
