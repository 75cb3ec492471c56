// Trainer on one process (LocalComm) through the real stream and order path on a tiny synthetic
// cohort: mid-epoch resume is bit-identical, accumulation equals a k-times larger batch,
// early stopping stops and writes best.pt, full-batch GD takes one step per epoch.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "src/eval/TrainingLog.h"
#include "src/train/Trainer.h"
#include "tests/train/TrainTestUtil.h"

namespace slidetrain {
namespace {

namespace fs = std::filesystem;
using testutil::LocalComm;

struct Data {
  std::string dir;
  wsi::Cohort cohort;
  SplitData train, val;
};

const Data& data() {
  static Data d = [] {
    Data x;
    x.dir = std::string(SLIDETRAIN_BINARY_DIR) + "/test_tmp/trainer_" + std::to_string(getpid());
    testutil::makeCohort(x.dir);
    x.cohort = wsi::Cohort::read(x.dir + "/c/cohort.csv");
    LocalComm comm;
    const Settings cfg = testutil::smallConfig(x.dir, "unused");
    x.train = prepareSplit(cfg.tiling, x.cohort, "train", comm);
    x.val = prepareSplit(cfg.tiling, x.cohort, "val", comm);
    return x;
  }();
  return d;
}

struct Cleanup : ::testing::Environment {
  void TearDown() override {
    fs::remove_all(std::string(SLIDETRAIN_BINARY_DIR) + "/test_tmp/trainer_" + std::to_string(getpid()));
  }
};
const auto* kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

std::unique_ptr<Trainer> makeTrainer(const Settings& cfg, bool withVal = false) {
  std::optional<SplitData> val;
  if (withVal) val = data().val;
  return std::make_unique<Trainer>(cfg, std::make_shared<LocalComm>(), data().train, val,
                                   data().cohort.classes);
}

TEST(Trainer, MidEpochResumeIsBitIdentical) {
  const auto& d = data();
  Settings a = testutil::smallConfig(d.dir, "resume_a");
  a = a.with({"model.dropout=0.3"});  // exercises the per-step RNG seeding
  auto full = makeTrainer(a);
  ASSERT_EQ(full->stepsPerEpoch(), 4);
  const TrainResult ra = full->run();
  EXPECT_EQ(ra.steps, 12);

  Settings b = testutil::smallConfig(d.dir, "resume_b");
  b = b.with({"model.dropout=0.3", "train.checkpoint_every_steps=2"});
  auto crashed = makeTrainer(b);
  crashed->crashAfterStep(7);  // last checkpoint: step 6 = epoch 2, batch 2 of 4
  crashed->run();
  EXPECT_FALSE(testutil::sameState(full->model(), crashed->model()));

  auto resumed = makeTrainer(b);  // train.resume: auto picks checkpoints/last.pt
  const TrainResult rc = resumed->run();
  EXPECT_EQ(rc.steps, 12);
  EXPECT_TRUE(testutil::sameState(full->model(), resumed->model()))
      << "max difference " << testutil::maxStateDiff(full->model(), resumed->model());

  // Starting over from scratch instead must not resume.
  Settings c = b;
  c = c.with({"train.resume=none", "train.epochs=1"});
  EXPECT_EQ(makeTrainer(c)->run().steps, 4);
}

TEST(Trainer, AccumulationEqualsLargerBatch) {
  const auto& d = data();
  const std::vector<std::string> noBn{"model.batch_norm=false", "optimizer.name=sgd", "train.epochs=2"};
  Settings big = testutil::smallConfig(d.dir, "acc_big");
  big = big.with(noBn);
  Settings acc = testutil::smallConfig(d.dir, "acc_k2");
  acc = acc.with(noBn);
  acc = acc.with({"train.batch_size=6", "train.accumulation_steps=2"});
  Settings small = testutil::smallConfig(d.dir, "acc_small");
  small = small.with(noBn);
  small = small.with({"train.batch_size=6", "train.max_steps=8"});
  auto tb = makeTrainer(big), ta = makeTrainer(acc), ts = makeTrainer(small);
  EXPECT_EQ(ta->stepsPerEpoch(), tb->stepsPerEpoch());
  tb->run();
  ta->run();
  ts->run();
  EXPECT_LT(testutil::maxStateDiff(tb->model(), ta->model()), 1e-5);
  // Without accumulation the 8 steps of 6 patches differ: the comparison can fail.
  EXPECT_GT(testutil::maxStateDiff(tb->model(), ts->model()), 1e-4);
}

TEST(Trainer, EarlyStoppingAndBestCheckpoint) {
  const auto& d = data();
  Settings c = testutil::smallConfig(d.dir, "early");
  // Tiny lr and no BatchNorm: val_loss moves far less than min_delta, so it never improves
  // after epoch 1.
  c = c.with({"optimizer.lr=1e-9", "model.batch_norm=false", "train.epochs=10",
                    "train.early_stopping.min_delta=1e-4",
                    "train.early_stopping.metric=val_loss", "train.early_stopping.patience=2"});
  const TrainResult r = makeTrainer(c, /*withVal=*/true)->run();
  EXPECT_TRUE(r.stoppedEarly);
  EXPECT_EQ(r.epochs, 3);
  EXPECT_EQ(r.bestEpoch, 1);
  ASSERT_TRUE(r.val.has_value());
  EXPECT_GT(r.val->patches, 0);
  EXPECT_TRUE(fs::exists(d.dir + "/early/checkpoints/best.pt"));
  EXPECT_TRUE(fs::exists(d.dir + "/early/checkpoints/last.pt"));
  std::ifstream in(d.dir + "/early/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    EXPECT_NE(line.find("\"val_loss\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"val_slide\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"decoded_mb_per_s\""), std::string::npos) << line;
  }
  EXPECT_EQ(lines, 3);
  // "steps" (report.html's per-step curves): every optimizer step of each epoch, in order; with
  // equal micro-batches and no class weights their mean loss is the epoch's; lr is the schedule's.
  const TrainingLog log = readTrainingLog(d.dir + "/early/metrics.jsonl");
  ASSERT_EQ(log.epochs.size(), 3u);
  int64_t next = 1;
  for (const EpochRecord& e : log.epochs) {
    double sum = 0;
    int n = 0;
    for (const StepRecord& s : log.steps)
      if (s.epoch == e.epoch) {
        EXPECT_EQ(s.step, next++);
        EXPECT_GE(s.accuracy, 0);
        EXPECT_LE(s.accuracy, 1);
        sum += s.loss, ++n;
      }
    ASSERT_GT(n, 0);
    EXPECT_EQ(next - 1, e.step);
    EXPECT_NEAR(sum / n, e.loss, 1e-6 * std::max(1.0, e.loss));
    EXPECT_EQ(e.worldSize, 1);
    EXPECT_EQ(e.device, "cpu");
  }
  EXPECT_DOUBLE_EQ(log.steps.back().lr, log.epochs.back().lr);
  // Resuming an early-stopped run trains nothing more.
  EXPECT_EQ(makeTrainer(c, true)->run().steps, r.steps);

  // With patience 0 the same run goes the distance.
  Settings full = testutil::smallConfig(d.dir, "no_early");
  full = full.with({"optimizer.lr=1e-9", "model.batch_norm=false", "train.epochs=4"});
  const TrainResult rf = makeTrainer(full, true)->run();
  EXPECT_FALSE(rf.stoppedEarly);
  EXPECT_EQ(rf.epochs, 4);
}

TEST(Trainer, ModeMeantForAValMetricDoesNotFlipTheFallbackLoss) {
  // val_auc with mode max and no val split: the run monitors train_loss. Before the direction
  // was resolved after the fallback, "max" made every falling loss a bad epoch: best.pt held the
  // first (worst) epoch and patience 1 stopped the run after epoch 2.
  const auto& d = data();
  Settings c = testutil::smallConfig(d.dir, "fallback_mode");
  c = c.with({"train.epochs=4", "train.early_stopping.metric=val_auc",
                    "train.early_stopping.mode=max", "train.early_stopping.patience=1"});
  const TrainResult r = makeTrainer(c)->run();
  EXPECT_EQ(r.monitor, "train_loss");
  std::ifstream in(d.dir + "/fallback_mode/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);)
    losses.push_back(std::stod(line.substr(line.find("\"loss\": ") + 8)));
  ASSERT_FALSE(losses.empty());
  // The best epoch is the one with the lowest training loss, and the run stops only when the
  // loss stops falling.
  const auto lowest = std::min_element(losses.begin(), losses.end()) - losses.begin() + 1;
  EXPECT_EQ(r.bestEpoch, lowest);
  EXPECT_NEAR(r.bestMetric, *std::min_element(losses.begin(), losses.end()), 1e-6);
  if (r.stoppedEarly) {
    EXPECT_GT(losses.back(), losses[losses.size() - 2]);
  }
}

TEST(Trainer, ResumeRefusesAnotherExperimentButTakesMoreEpochs) {
  // train.resume: auto used to continue from any last.pt in run_dir, whatever the cohort or the
  // settings: another experiment silently trained on from someone else's weights.
  const auto& d = data();
  Settings c = testutil::smallConfig(d.dir, "fingerprint");
  c = c.with({"train.epochs=1"});
  EXPECT_EQ(makeTrainer(c)->run().steps, 4);
  auto refusal = [&](const Settings& cfg, bool swapSplits = false) {
    try {
      if (swapSplits)
        Trainer(cfg, std::make_shared<LocalComm>(), d.val, d.train, d.cohort.classes);
      else
        makeTrainer(cfg);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("resumed");
  };
  Settings lr = c;
  lr = lr.with({"optimizer.lr=0.05"});
  std::string e = refusal(lr);
  EXPECT_NE(e.find("belongs to another experiment"), std::string::npos) << e;
  EXPECT_NE(e.find("optimizer.lr: 0.02 -> 0.05"), std::string::npos) << e;
  EXPECT_NE(e.find("train.resume=none"), std::string::npos) << e;
  Settings aug = c;
  aug = aug.with({"augment.flips=false", "model.dropout=0.2"});
  e = refusal(aug);
  EXPECT_NE(e.find("augment.flips"), std::string::npos) << e;
  EXPECT_NE(e.find("model.dropout"), std::string::npos) << e;
  e = refusal(c, /*swapSplits=*/true);  // the val slide trains now: a cv fold's leakage
  EXPECT_NE(e.find("slides of train: 3 slides -> 1"), std::string::npos) << e;
  EXPECT_NE(e.find("slides of val"), std::string::npos) << e;
  // Length, speed and logging are not the experiment: more epochs resume.
  Settings more = c;
  more = more.with({"train.epochs=2", "train.log_every=5", "data.workers=1", "train.timeout_s=60"});
  EXPECT_EQ(makeTrainer(more)->run().steps, 8);
}

TEST(Trainer, FullBatchGdStepsOncePerEpochAndBceTrains) {
  const auto& d = data();
  Settings c = testutil::smallConfig(d.dir, "gd");
  c = c.with({"optimizer.name=gd", "train.epochs=2", "train.batch_size=20"});
  auto t = makeTrainer(c);
  EXPECT_EQ(t->stepsPerEpoch(), 1);
  EXPECT_EQ(t->run().steps, 2);

  Settings b = testutil::smallConfig(d.dir, "bce");
  b = b.with({"train.loss=bce", "train.class_weights=[1.0, 2.0]", "train.label_smoothing=0.1",
                    "train.grad_clip_norm=1.0", "optimizer.scale_lr_with_batch=true",
                    "optimizer.reference_batch_size=24", "train.epochs=6"});
  auto tb = makeTrainer(b, true);
  const TrainResult r = tb->run();
  EXPECT_EQ(r.steps, 24);
  // It learns: the (label-smoothed, class-weighted) training loss falls well below the first
  // epoch's and the patches end mostly right. A sign or scale error in the BCE path fails here.
  std::ifstream in(d.dir + "/bce/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);)
    losses.push_back(std::stod(line.substr(line.find("\"loss\": ") + 8)));
  ASSERT_EQ(losses.size(), 6u);
  EXPECT_LT(losses.back(), 0.8 * losses.front()) << "first " << losses.front() << ", last " << losses.back();
  EXPECT_GT(r.train.accuracy, 0.8);
  ASSERT_TRUE(r.val.has_value());
  EXPECT_TRUE(std::isfinite(r.val->loss));
  const at::Tensor p = r.val->probabilities;
  ASSERT_EQ(p.size(1), 2);  // one sigmoid output turned into [1 - p, p]
  EXPECT_LT((p.sum(1) - 1).abs().max().item<double>(), 1e-5);
}

}  // namespace
}  // namespace slidetrain
