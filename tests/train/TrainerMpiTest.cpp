// Trainer under mpirun (2 and 3 ranks): W ranks x B equals 1 rank x W*B with SyncBatchNorm on
// (each rank runs the one-process reference locally on the full batch), and a mid-epoch
// resume is bit-identical to an uninterrupted run.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "distributed/MpiComm.h"
#include "src/data/ClassOrder.h"
#include "src/data/PatchFolderExport.h"
#include "src/train/Trainer.h"
#include "tests/train/TrainTestUtil.h"
#include "wsi/Json.h"

namespace slidetrain {
namespace {

namespace fs = std::filesystem;
using testutil::LocalComm;

std::shared_ptr<dist::Comm> world() {
  static auto c = dist::makeComm("mpi", dist::CommOptions{std::chrono::seconds(120)});
  return c;
}

struct Data {
  std::string dir;
  wsi::Cohort cohort;
  SplitData train;
};

const Data& data() {
  static Data d = [] {
    Data x;
    // One folder per world size: ctest may run the np2 and np3 jobs at the same time.
    x.dir = std::string(SLIDETRAIN_BINARY_DIR) + "/test_tmp/trainer_mpi_np" + std::to_string(world()->size());
    if (world()->rank() == 0) testutil::makeCohort(x.dir);
    world()->barrier();
    x.cohort = wsi::Cohort::read(x.dir + "/c/cohort.csv");
    x.train = prepareSplit(testutil::smallConfig(x.dir, "unused").tiling, x.cohort, "train", *world());
    return x;
  }();
  return d;
}

/// Per-rank run folder for the local references (every LocalComm trainer is a "rank 0").
std::string mine(const std::string& name) { return name + "_rank" + std::to_string(world()->rank()); }

TEST(TrainerMpi, RanksTimesBatchEqualsOneRankFullBatchWithSyncBn) {
  const auto& d = data();
  const int w = world()->size();
  const std::vector<std::string> common{"train.batch_size=" + std::to_string(4 * w), "train.max_steps=6",
                                        "train.sync_batchnorm=true", "model.batch_norm=true",
                                        "model.dropout=0"};
  Settings dc = testutil::smallConfig(d.dir, "syncbn_dist");
  dc = dc.with(common);
  Trainer dist(dc, world(), d.train, std::nullopt, d.cohort.classes);
  EXPECT_EQ(dist.run().steps, 6);

  Settings lc = testutil::smallConfig(d.dir, mine("syncbn_ref"));
  lc = lc.with(common);
  Trainer ref(lc, std::make_shared<LocalComm>(), d.train, std::nullopt, d.cohort.classes);
  ref.run();
  std::string where;
  const double diff = testutil::maxStateDiff(dist.model(), ref.model(), &where, true, false);
  EXPECT_LT(diff, 1e-4) << "parameters differ by " << diff << " (relative) in " << where;
  // Running statistics: SyncBatchNorm accumulates E[x] and E[x^2] in double, so they match
  // torch's two-pass kernel on the concatenated batch to the 1e-5.
  const double bdiff = testutil::maxStateDiff(dist.model(), ref.model(), &where, false, true);
  EXPECT_LT(bdiff, 1e-5) << "buffers differ by " << bdiff << " (relative) in " << where;

  // Without SyncBatchNorm the per-rank statistics differ from the full batch's: detectable.
  Settings nc = testutil::smallConfig(d.dir, "nosync_dist");
  nc = nc.with(common);
  nc = nc.with({"train.sync_batchnorm=false"});
  Trainer nosync(nc, world(), d.train, std::nullopt, d.cohort.classes);
  nosync.run();
  EXPECT_GT(testutil::maxStateDiff(nosync.model(), ref.model()), 1e-4);
}

TEST(TrainerMpi, WithoutSyncBnEveryRankKeepsRankZerosBuffers) {
  // train.sync_batchnorm=false: each rank's BatchNorm sees only its slice, so its running
  // statistics drift apart unless rank 0's are broadcast before every forward (PyTorch DDP's
  // broadcast_buffers=True). Then every rank evaluates and checkpoints the same model.
  const auto& d = data();
  Settings c = testutil::smallConfig(d.dir, "nosync_buffers");
  c = c.with({"train.batch_size=" + std::to_string(4 * world()->size()), "train.max_steps=5",
                    "train.sync_batchnorm=false", "model.batch_norm=true"});
  Trainer t(c, world(), d.train, std::nullopt, d.cohort.classes);
  t.run();
  int checked = 0;
  for (const auto& b : t.model().named_buffers()) {
    const at::Tensor all = world()->allGather(b.value().to(at::kDouble).contiguous());
    for (int r = 1; r < world()->size(); ++r)
      EXPECT_TRUE(at::equal(all[r], all[0])) << b.key() << " differs between rank " << r << " and rank 0";
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

/// (epoch, micro-batch, sample id, FNV-1a of the sample's augmented pixels) of every sample seen.
using Seen = std::vector<std::array<uint64_t, 4>>;
std::function<void(int64_t, int64_t, const wsi::Batch&)> recorder(Seen& out) {
  return [&out](int64_t epoch, int64_t mb, const wsi::Batch& b) {
    const size_t px = static_cast<size_t>(b.size) * b.size * 3;
    for (size_t i = 0; i < b.count(); ++i) {
      uint64_t h = 1469598103934665603ULL;
      for (size_t k = 0; k < px; ++k) h = (h ^ b.pixels[i * px + k]) * 1099511628211ULL;
      out.push_back({static_cast<uint64_t>(epoch), static_cast<uint64_t>(mb),
                     static_cast<uint64_t>(b.ids[i]), h});
    }
  };
}

/// Default augmentation (flips, rot90, colour jitter): W ranks x B/W must see, in global batch
/// k, exactly the samples one rank sees with B, augmented to the same pixels, and end with the
/// same weights. The per-sample augmentation seed is (seed, epoch, sample id): no rank or
/// world size in it. `tag` names the run folders. Weights agree to `weightTol`: 1e-6 in the
/// NCHW layout; oneDNN's channels_last convolution backward (train.channels_last, the default)
/// sums the weight gradient in a batch-size-dependent order, 1e-5 (docs/distributed.md).
void expectWorldSizeInvariance(const SplitData& train, const std::vector<std::string>& classes,
                               const std::string& tag, bool channelsLast, double weightTol) {
  const auto& d = data();
  const int w = world()->size(), r = world()->rank();
  const std::vector<std::string> common{"train.batch_size=12", "train.max_steps=5",
                                        "train.sync_batchnorm=true", "model.dropout=0",
                                        std::string("train.channels_last=") + (channelsLast ? "true" : "false")};
  Settings dc = testutil::smallConfig(d.dir, tag + "_dist");
  dc = dc.with(common);
  Trainer dist(dc, world(), train, std::nullopt, classes);
  Seen seen;
  dist.observeBatches(recorder(seen));
  dist.run();
  Settings lc = testutil::smallConfig(d.dir, mine(tag + "_ref"));
  lc = lc.with(common);
  Trainer ref(lc, std::make_shared<LocalComm>(), train, std::nullopt, classes);
  Seen all;
  ref.observeBatches(recorder(all));
  ref.run();
  // This rank's samples are slice r of each reference micro-batch, in order, with equal pixels.
  const size_t slice = 12 / static_cast<size_t>(w);
  ASSERT_EQ(all.size(), seen.size() * static_cast<size_t>(w));
  for (size_t i = 0; i < seen.size(); ++i) {
    const size_t mb = i / slice, pos = i % slice;
    const auto& expect = all[mb * 12 + static_cast<size_t>(r) * slice + pos];
    ASSERT_EQ(seen[i][0], expect[0]);
    ASSERT_EQ(seen[i][1], expect[1]);
    ASSERT_EQ(seen[i][2], expect[2]) << "micro-batch " << mb << " position " << pos << ": another sample";
    ASSERT_EQ(seen[i][3], expect[3]) << "sample " << seen[i][2] << ": other augmented pixels";
  }
  std::string where;
  const double wd = testutil::maxStateDiff(dist.model(), ref.model(), &where, true, false);
  const double bd = testutil::maxStateDiff(dist.model(), ref.model(), &where, false, true);
  std::printf("rank %d: world %d vs 1 after 5 steps with augmentation (%s): weights %.3g, buffers %.3g\n", r, w,
              channelsLast ? "channels_last" : "NCHW", wd, bd);
  EXPECT_LT(wd, weightTol) << where;
  EXPECT_LT(bd, 1e-5) << where;
}

TEST(TrainerMpi, WorldSizeInvarianceWithAugmentation) {
  expectWorldSizeInvariance(data().train, data().cohort.classes, "aug", false, 1e-6);
  expectWorldSizeInvariance(data().train, data().cohort.classes, "aug_cl", true, 1e-5);
}

TEST(TrainerMpi, PatchFoldersWorldSizeInvarianceWithAugmentation) {
  // The same contract for data.source: patch_folders: the test cohort's patches written as a
  // patch-folder dataset (12 per slide), read back as one image per sample.
  const auto& d = data();
  const std::string pf = d.dir + "/patch_folders";
  const Settings s = testutil::smallConfig(d.dir, "unused").with({"data.source=patch_folders", "data.patch_folders=" + pf});
  if (world()->rank() == 0) writePatchFolders(d.cohort, s.tiling, pf, 12);
  world()->barrier();
  const wsi::Cohort cohort = readCohort(s.run, s.data);
  const SplitData train = prepareSplit(s.tiling, cohort, "train", *world());
  ASSERT_GE(train.samples.size(), 24u);
  ASSERT_TRUE(train.slideOptions.front().imageFile);
  // Every rank holds the same samples (image, id, label) in the same order.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ULL; };
  for (const auto& r : train.samples) mix(std::hash<std::string>{}(train.paths[r.slide])), mix(r.id), mix(r.label);
  const at::Tensor all = world()->allGather(at::tensor({static_cast<int64_t>(h >> 1)}, at::kLong));
  for (int k = 1; k < world()->size(); ++k) EXPECT_TRUE(at::equal(all[k], all[0])) << "rank " << k << " has other samples";
  expectWorldSizeInvariance(train, cohort.classes, "pf_aug", false, 1e-6);
  expectWorldSizeInvariance(train, cohort.classes, "pf_aug_cl", true, 1e-5);
}

TEST(TrainerMpi, MidEpochResumeIsBitIdentical) {
  const auto& d = data();
  Settings a = testutil::smallConfig(d.dir, "resume_a");
  a = a.with({"model.dropout=0.3"});
  Trainer full(a, world(), d.train, std::nullopt, d.cohort.classes);
  EXPECT_EQ(full.run().steps, 12);

  Settings b = testutil::smallConfig(d.dir, "resume_b");
  b = b.with({"model.dropout=0.3", "train.checkpoint_every_steps=2"});
  {
    Trainer crashed(b, world(), d.train, std::nullopt, d.cohort.classes);
    crashed.crashAfterStep(7);
    crashed.run();
  }
  world()->barrier();  // rank 0 wrote last.pt; everyone reads it next
  Trainer resumed(b, world(), d.train, std::nullopt, d.cohort.classes);
  EXPECT_EQ(resumed.run().steps, 12);
  EXPECT_TRUE(testutil::sameState(full.model(), resumed.model()))
      << "max difference " << testutil::maxStateDiff(full.model(), resumed.model());
}

TEST(TrainerMpi, EveryRankReportsItsOwnThroughput) {
  // metrics.jsonl "ranks": each rank puts its figures in its own slot of the epoch's all-reduce,
  // so rank 0's line holds every rank's patches, patches/s and data wait (and no GPU figure here).
  const auto& d = data();
  const int w = world()->size();
  Settings c = testutil::smallConfig(d.dir, "ranks");
  c = c.with({"train.batch_size=" + std::to_string(4 * w), "train.epochs=2"});
  Trainer t(c, world(), d.train, std::nullopt, d.cohort.classes);
  t.run();
  world()->barrier();
  if (world()->rank() != 0) return;
  std::ifstream in(d.dir + "/ranks/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const wsi::JsonValue v = wsi::parseJson(line, "metrics.jsonl");
    const wsi::JsonValue* ranks = v.find("ranks");
    ASSERT_TRUE(ranks && ranks->isObject()) << line;
    const auto& patches = ranks->find("patches")->array;
    ASSERT_EQ(patches.size(), static_cast<size_t>(w)) << line;
    double sum = 0;
    for (int r = 0; r < w; ++r) {
      EXPECT_GT(patches[r].number, 0) << "rank " << r << ": " << line;
      sum += patches[r].number;
      EXPECT_GT(ranks->find("patches_per_s")->array[r].number, 0) << line;
      EXPECT_GT(ranks->find("seconds")->array[r].number, 0) << line;
      const double wait = ranks->find("data_wait_pct")->array[r].number;
      EXPECT_GE(wait, 0) << line;
      EXPECT_LE(wait, 100) << line;
      EXPECT_EQ(ranks->find("gpu_busy_pct")->array[r].type, wsi::JsonValue::Type::Null) << line;
    }
    EXPECT_DOUBLE_EQ(sum, v.find("patches")->number) << "the ranks' patches add up to the epoch's";
    EXPECT_EQ(v.find("gpu_busy_pct"), nullptr) << "no GPU, no figure";
  }
  EXPECT_EQ(lines, 2);
}

TEST(TrainerMpi, Cleanup) {
  world()->barrier();
  if (world()->rank() == 0) fs::remove_all(data().dir);
}

}  // namespace
}  // namespace slidetrain
