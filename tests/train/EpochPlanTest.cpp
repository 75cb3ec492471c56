// EpochPlan (the geometry of training) and TrainStep (one optimizer step).
#include <gtest/gtest.h>

#include <random>

#include <torch/torch.h>

#include "src/data/StreamOptions.h"
#include "src/train/EpochPlan.h"
#include "src/train/TrainStep.h"
#include "tests/train/TrainTestUtil.h"

namespace slidetrain {
namespace {

TrainSettings trainWith(const std::vector<std::string>& overrides) {
  return Settings::defaults(overrides).train;
}

TEST(EpochPlan, StepsAccumulationAndMaxSteps) {
  const EpochPlan p = EpochPlan::make(100, trainWith({"train.batch_size=8", "train.epochs=3",
                                                      "train.accumulation_steps=2"}), false, 2);
  EXPECT_EQ(p.microPerEpoch, 12);  // the trailing 4 samples are dropped
  EXPECT_EQ(p.groupSize, 2);
  EXPECT_EQ(p.stepsPerEpoch, 6);
  EXPECT_EQ(p.totalSteps, 18);
  EXPECT_EQ(p.epochs, 3);
  EXPECT_EQ(p.effectiveBatch(), 16);
  EXPECT_FALSE(p.endsGroup(0));
  EXPECT_TRUE(p.endsGroup(1));
  EXPECT_EQ(p.groupOf(5), 2);
  EXPECT_EQ(p.groupSpan(1, 100), (std::pair<int64_t, int64_t>{16, 32}));
  // max_steps wins over epochs; the last epoch stops mid-way.
  const EpochPlan m = EpochPlan::make(100, trainWith({"train.batch_size=8", "train.max_steps=14"}), false, 1);
  EXPECT_EQ(m.totalSteps, 14);
  EXPECT_EQ(m.epochs, 2);
}

TEST(EpochPlan, FullBatchCoversEverySampleInOneStep) {
  const EpochPlan p = EpochPlan::make(100, trainWith({"train.batch_size=8", "train.epochs=2"}), true, 1);
  EXPECT_EQ(p.microPerEpoch, 13);  // the partial last micro-batch included
  EXPECT_EQ(p.groupSize, 13);
  EXPECT_EQ(p.stepsPerEpoch, 1);
  EXPECT_EQ(p.totalSteps, 2);
  EXPECT_EQ(p.effectiveBatch(), 100);
  EXPECT_TRUE(p.endsGroup(12));
  EXPECT_EQ(p.groupSpan(0, 100), (std::pair<int64_t, int64_t>{0, 100}));
}

TEST(EpochPlan, BadBatchSizesNameTheKey) {
  auto message = [](int64_t epochSize, int64_t batch, int world) {
    try {
      EpochPlan::make(epochSize, trainWith({"train.batch_size=" + std::to_string(batch)}), false, world);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(100, 6, 4).find("train.batch_size: 6 is not divisible by the world size 4"), std::string::npos);
  EXPECT_NE(message(10, 16, 1).find("train.batch_size: 16 exceeds the 10 training patches"), std::string::npos);
}

wsi::Batch randomBatch(int count, int size, uint32_t seed) {
  wsi::Batch b;
  b.size = size;
  b.pixels.allocate(static_cast<size_t>(count) * size * size * 3);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < b.pixels.size(); ++i) b.pixels.data()[i] = static_cast<uint8_t>(rng() & 255);
  for (int i = 0; i < count; ++i) b.labels.push_back(i % 2), b.ids.push_back(i);
  return b;
}

wsi::Batch slice(const wsi::Batch& b, int begin, int end) {
  wsi::Batch s;
  s.size = b.size;
  const size_t per = static_cast<size_t>(b.size) * b.size * 3;
  s.pixels.allocate(per * static_cast<size_t>(end - begin));
  std::copy(b.pixels.data() + per * begin, b.pixels.data() + per * end, s.pixels.data());
  s.labels.assign(b.labels.begin() + begin, b.labels.begin() + end);
  s.ids.assign(b.ids.begin() + begin, b.ids.begin() + end);
  return s;
}

// Two micro-batches of 2 accumulated into one step give the weights of one micro-batch of 4:
// the loss factor world / (the step's normaliser) makes the gradient the mean over the step.
TEST(TrainStep, AccumulatedMicroBatchesEqualOneBatch) {
  const Settings s = Settings::defaults({"model.batch_norm=false", "model.dropout=0", "tiling.patch_size=32",
                                         "optimizer.name=momentum", "optimizer.lr=0.1", "train.batch_size=4"});
  const wsi::Batch all = randomBatch(4, 32, 7);
  auto run = [&](bool accumulate) {
    torch::manual_seed(1);
    auto model = buildModel(modelOptions(s.model, 2, 32));
    const EpochPlan plan = EpochPlan::make(16, s.train, false, 1);
    TrainStep step(s, std::make_shared<testutil::LocalComm>(), model, lossOptions(s.train),
                   at::Device(at::kCPU), plan, true);
    for (int k = 0; k < 2; ++k) {  // two optimizer steps (momentum carries over)
      step.startPass();
      step.begin(k, 4.0);
      if (accumulate) {
        step.forwardBackward(slice(all, 0, 2), false);
        step.forwardBackward(slice(all, 2, 4), true);
      } else {
        step.forwardBackward(all, true);
      }
      EXPECT_TRUE(step.finish());
    }
    return model;
  };
  auto one = run(false), two = run(true);
  EXPECT_LT(testutil::maxStateDiff(*one, *two), 1e-5);
  // And the step moved the weights.
  torch::manual_seed(1);
  auto fresh = buildModel(modelOptions(s.model, 2, 32));
  EXPECT_GT(testutil::maxStateDiff(*one, *fresh), 1e-4);
}

// train.grad_clip_norm: TrainStep::clipGradNorm (on the device, nothing read back) against
// libtorch's torch::nn::utils::clip_grad_norm_ on copies of the same gradients, above and below
// the bound.
TEST(TrainStep, ClipGradNormIsLibtorchs) {
  for (double bound : {0.05, 1e6}) {
    const Settings s = Settings::defaults({"tiling.patch_size=32", "train.batch_size=4",
                                           "train.grad_clip_norm=" + std::to_string(bound)});
    torch::manual_seed(2);
    auto model = buildModel(modelOptions(s.model, 2, 32));
    const EpochPlan plan = EpochPlan::make(16, s.train, false, 1);
    TrainStep step(s, std::make_shared<testutil::LocalComm>(), model, lossOptions(s.train),
                   at::Device(at::kCPU), plan, true);
    std::vector<at::Tensor> copies;
    for (auto& p : model->parameters()) {
      const at::Tensor g = at::randn(p.sizes());
      p.mutable_grad() = g.clone();
      at::Tensor q = p.detach().clone().requires_grad_();
      q.mutable_grad() = g.clone();
      copies.push_back(q);
    }
    torch::nn::utils::clip_grad_norm_(copies, bound);
    step.clipGradNorm();
    size_t i = 0;
    double worst = 0;
    for (auto& p : model->parameters()) worst = std::max(worst, (p.grad() - copies[i++].grad()).abs().max().item<double>());
    EXPECT_LT(worst, 1e-6) << "max_norm " << bound;
  }
}

}  // namespace
}  // namespace slidetrain
