// Mixed precision on one process: the autocast scope (libtorch 1.13 and 2.x APIs), SyncBatchNorm
// at float32 under bf16 autocast, the loss scaler's rules, and the trainer with train.amp=bf16
// (learns on the CPU, really in bfloat16) and fp16 (the scaler's state is checkpointed).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "distributed/SyncBatchNorm.h"
#include "src/train/Amp.h"
#include <torch/serialize/input-archive.h>

#include "src/train/TrainState.h"
#include "src/train/Trainer.h"
#include "tests/train/TrainTestUtil.h"

namespace slidetrain {
namespace {

namespace fs = std::filesystem;
using testutil::LocalComm;

TEST(Autocast, Bf16ScopeOnTheCpuCastsConvolutionsAndRestores) {
  const at::Tensor x = at::randn({1, 3, 8, 8}), w = at::randn({4, 3, 3, 3});
  {
    AutocastScope outer(c10::kCPU, AmpMode::Bf16);
    EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kBFloat16);
    {
      AutocastScope inner(c10::kCPU, AmpMode::Bf16);
      EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kBFloat16);
    }
    EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kBFloat16);  // inner exit keeps outer's state
    AutocastScope off(c10::kCPU, AmpMode::Off);
    EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kBFloat16);  // Off changes nothing
  }
  EXPECT_EQ(at::conv2d(x, w).scalar_type(), at::kFloat);
  EXPECT_EQ(parseAmpMode("bf16"), AmpMode::Bf16);
  EXPECT_THROW(parseAmpMode("true"), ConfigError);
}

TEST(Autocast, SyncBatchNormNormalisesInFloatAndKeepsTheInputPrecision) {
  torch::manual_seed(1);
  const at::Tensor x = at::randn({6, 3, 5, 5}) * 3 + 1;
  dist::SyncBatchNorm a(dist::SyncBatchNormOptions{3}), b(dist::SyncBatchNormOptions{3});
  const at::Tensor ref = a->forward(x);
  const at::Tensor half = b->forward(x.to(at::kBFloat16));
  EXPECT_EQ(half.scalar_type(), at::kBFloat16);
  EXPECT_EQ(b->running_mean.scalar_type(), at::kFloat);
  // Statistics from the bf16 input at float precision: as close as the input's rounding allows.
  EXPECT_TRUE(at::allclose(b->running_mean, a->running_mean, 1e-2, 1e-2));
  EXPECT_TRUE(at::allclose(half.to(at::kFloat), ref, 5e-2, 5e-2));
}

TEST(LossScaler, UnscalesSkipsOnInfAndGrows) {
  LossScalerOptions o;
  o.initScale = 8;
  o.growthInterval = 3;
  LossScaler s(o, nullptr, c10::kCPU);
  at::Tensor p = at::zeros({3}).requires_grad_(true);
  p.mutable_grad() = at::full({3}, 16.0f);
  EXPECT_TRUE(s.unscale({p}));
  EXPECT_TRUE(at::equal(p.grad(), at::full({3}, 2.0f)));  // divided by the scale
  for (int i = 0; i < 3; ++i) s.update(true);
  EXPECT_EQ(s.scale(), 16.0);
  p.mutable_grad()[1] = -std::numeric_limits<float>::infinity();
  EXPECT_FALSE(s.unscale({p}));
  s.update(false);
  EXPECT_EQ(s.scale(), 8.0);
  EXPECT_THROW(s.setState(0, 0), std::runtime_error);
}

struct Data {
  std::string dir;
  wsi::Cohort cohort;
  SplitData train;
};

const Data& data() {
  static Data d = [] {
    Data x;
    x.dir = std::string(SLIDETRAIN_BINARY_DIR) + "/test_tmp/amp_" + std::to_string(getpid());
    testutil::makeCohort(x.dir);
    x.cohort = wsi::Cohort::read(x.dir + "/c/cohort.csv");
    LocalComm comm;
    x.train = prepareSplit(testutil::smallConfig(x.dir, "unused").tiling, x.cohort, "train", comm);
    return x;
  }();
  return d;
}

struct Cleanup : ::testing::Environment {
  void TearDown() override {
    fs::remove_all(std::string(SLIDETRAIN_BINARY_DIR) + "/test_tmp/amp_" + std::to_string(getpid()));
  }
};
const auto* kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

std::vector<double> epochLosses(const std::string& runDir) {
  std::ifstream in(runDir + "/metrics.jsonl");
  std::vector<double> v;
  for (std::string line; std::getline(in, line);) {
    const auto k = line.find("\"loss\": ");
    if (k != std::string::npos) v.push_back(std::stod(line.substr(k + 8)));
  }
  return v;
}

TEST(TrainerAmp, Bf16TrainsTheSmallModelOnTheCpu) {
  const auto& d = data();
  Settings bf = testutil::smallConfig(d.dir, "bf16");
  bf = bf.with({"train.amp=bf16", "train.epochs=6", "optimizer.lr=0.05"});
  Trainer tb(bf, std::make_shared<LocalComm>(), d.train, std::nullopt, d.cohort.classes);
  const TrainResult r = tb.run();
  const std::vector<double> losses = epochLosses(d.dir + "/bf16");
  ASSERT_EQ(losses.size(), 6u);
  EXPECT_LT(losses.back(), 0.7 * losses.front()) << "bf16 training did not learn: first epoch loss "
                                                 << losses.front() << ", last " << losses.back();
  EXPECT_GT(r.train.accuracy, 0.75);
  for (const auto& p : tb.model().parameters()) EXPECT_EQ(p.scalar_type(), at::kFloat);  // master weights

  // Autocast was in effect: the same run in float32 ends elsewhere.
  Settings fp = testutil::smallConfig(d.dir, "fp32");
  fp = fp.with({"train.epochs=1"});
  Settings bf1 = testutil::smallConfig(d.dir, "bf16_1");
  bf1 = bf1.with({"train.amp=bf16", "train.epochs=1"});
  Trainer a(fp, std::make_shared<LocalComm>(), d.train, std::nullopt, d.cohort.classes);
  Trainer b(bf1, std::make_shared<LocalComm>(), d.train, std::nullopt, d.cohort.classes);
  a.run();
  b.run();
  EXPECT_GT(testutil::maxStateDiff(a.model(), b.model()), 1e-4);
}

std::pair<double, int64_t> savedScale(const std::string& checkpoint) {
  torch::serialize::InputArchive ar;
  ar.load_from(checkpoint);
  at::Tensor scale, clean;
  ar.read("loss_scale", scale);
  ar.read("loss_scale_clean_steps", clean);
  return {scale.item<double>(), clean.item<int64_t>()};
}

TEST(TrainerAmp, Fp16LossScaleIsLoggedCheckpointedAndResumed) {
  const auto& d = data();
  Settings c = testutil::smallConfig(d.dir, "fp16");
  c = c.with({"train.amp=fp16", "train.epochs=1", "train.amp_init_scale=256",
                    "train.amp_growth_interval=3"});
  Trainer t(c, std::make_shared<LocalComm>(), d.train, std::nullopt, d.cohort.classes);
  ASSERT_EQ(t.run().steps, 4);
  // 4 clean steps with growth every 3: 256 -> 512, one clean step counted since.
  EXPECT_EQ(savedScale(d.dir + "/fp16/checkpoints/last.pt"), std::make_pair(512.0, int64_t(1)));
  std::ifstream in(d.dir + "/fp16/metrics.jsonl");
  const std::string line((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(line.find("\"amp\": {\"loss_scale\": 512, \"skipped_steps\": 0}"), std::string::npos) << line;
  // Resume with more epochs: the scaler continues from the checkpoint (512, 1 clean step), so it
  // grows to 1024 at the second step of epoch 2 and counts 2 clean steps after that (a scaler
  // restarted from 256 would stand at 512; one that lost its count at 1024 with 1).
  c = c.with({"train.epochs=2"});
  Trainer r(c, std::make_shared<LocalComm>(), d.train, std::nullopt, d.cohort.classes);
  ASSERT_EQ(r.run().steps, 8);
  EXPECT_EQ(savedScale(d.dir + "/fp16/checkpoints/last.pt"), std::make_pair(1024.0, int64_t(2)));
}

}  // namespace
}  // namespace slidetrain
