// SyncBatchNorm under mpirun vs torch BatchNorm on the concatenated global batch: forward,
// input/weight/bias gradients, running statistics; 1d and 2d; equal, unequal and empty slices;
// channels_last kept; the global count from a GlobalBatchScope or from the collective. And its
// CPU kernels (BatchNormKernels.h) against float64 ATen arithmetic.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <ATen/Context.h>
#include <torch/autograd.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/moduledict.h>
#include <torch/nn/modules/container/sequential.h>

#include <optional>

#include <ATen/Parallel.h>

#include "distributed/BatchNormKernels.h"
#include "distributed/GradSync.h"
#include "distributed/MpiComm.h"
#include "distributed/SyncBatchNorm.h"

using namespace slidetrain::dist;

namespace {

std::shared_ptr<Comm> comm() {
  static auto c = makeComm("mpi", CommOptions{std::chrono::seconds(60)});
  return c;
}

double maxDiff(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0;
  return (a - b).abs().max().item<double>();
}

enum class Split { Equal, Unequal, LastEmpty };

/// Samples per rank for a split; the same on every rank.
std::vector<int64_t> counts(Split s, int w) {
  std::vector<int64_t> c(static_cast<size_t>(w), 3);
  for (int r = 0; r < w; ++r) {
    if (s == Split::Unequal) c[r] = r + 1;
    if (s == Split::LastEmpty && r == w - 1) c[r] = 0;
  }
  return c;
}

/// Runs SyncBatchNorm on this rank's slice and torch BatchNorm on the whole batch, and compares.
/// `shape` is the per-sample shape after the channel dim ({} for [N, C], {L} or {H, W}).
enum class Count { Reduced, Scoped };

void compareWithTorch(Split split, std::vector<int64_t> shape, Count how = Count::Reduced,
                      bool channelsLast = false) {
  const int w = comm()->size(), r = comm()->rank();
  const int64_t channels = 5;
  const auto c = counts(split, w);
  int64_t total = 0, begin = 0;
  for (int i = 0; i < w; ++i) {
    if (i < r) begin += c[i];
    total += c[i];
  }
  std::vector<int64_t> full{total, channels};
  full.insert(full.end(), shape.begin(), shape.end());
  at::manual_seed(42);  // same global data, weights and upstream gradient on every rank
  const at::Tensor x = at::randn(full) * 3 + 1;
  const at::Tensor upstream = at::randn(full);
  const at::Tensor weight = at::rand({channels}) + 0.5, bias = at::randn({channels});

  SyncBatchNorm sbn(SyncBatchNormOptions{channels, 1e-5, 0.1}, comm());
  torch::nn::BatchNorm1d ref{torch::nn::BatchNorm1dOptions(channels)};  // same math for 2d
  {
    c10::NoGradGuard g;
    sbn->weight.copy_(weight);
    sbn->bias.copy_(bias);
    ref->weight.copy_(weight);
    ref->bias.copy_(bias);
  }
  at::Tensor xl = x.narrow(0, begin, c[r]).clone();
  if (channelsLast) xl = xl.contiguous(at::MemoryFormat::ChannelsLast);
  xl.requires_grad_(true);
  at::Tensor xr = x.clone().requires_grad_(true);
  std::optional<GlobalBatchScope> scope;
  if (how == Count::Scoped) scope.emplace(c);
  at::Tensor yl = sbn->forward(xl);
  scope.reset();
  if (channelsLast) {
    EXPECT_TRUE(yl.is_contiguous(at::MemoryFormat::ChannelsLast));
  }
  at::Tensor yr = at::batch_norm(xr, ref->weight, ref->bias, ref->running_mean, ref->running_var,
                                 true, 0.1, 1e-5, false);
  EXPECT_LT(maxDiff(yl, yr.narrow(0, begin, c[r])), 1e-5);

  // Loss convention: mean over the global batch of <y, upstream>; this rank's share is scaled
  // by lossScaleForGlobalMean and its parameter gradients are then averaged (as GradSync does).
  (yl * upstream.narrow(0, begin, c[r])).sum().mul(lossScaleForGlobalMean(total, w)).backward();
  (yr * upstream).sum().div(total).backward();
  // Input gradients are w times the global-mean ones (every rank's loss is scaled by w / total)
  EXPECT_LT(maxDiff(xl.grad() / w, xr.grad().narrow(0, begin, c[r])), 1e-5);
  at::Tensor gw = sbn->weight.grad().clone(), gb = sbn->bias.grad().clone();
  comm()->allReduce(gw, ReduceOp::Avg);
  comm()->allReduce(gb, ReduceOp::Avg);
  EXPECT_LT(maxDiff(gw, ref->weight.grad()), 1e-5);
  EXPECT_LT(maxDiff(gb, ref->bias.grad()), 1e-5);
  EXPECT_LT(maxDiff(sbn->running_mean, ref->running_mean), 1e-5);
  EXPECT_LT(maxDiff(sbn->running_var, ref->running_var), 1e-5);  // unbiased global variance
  EXPECT_EQ(sbn->num_batches_tracked.item<int64_t>(), 1);

  // Eval: running statistics, no communication (a desync here would hang, then time out).
  sbn->eval();
  c10::NoGradGuard g;
  const at::Tensor xe = x.narrow(0, begin, c[r]);
  EXPECT_LT(maxDiff(sbn->forward(xe), at::batch_norm(xe, ref->weight, ref->bias,
                                                     ref->running_mean, ref->running_var, false,
                                                     0.1, 1e-5, false)),
            1e-5);
}

}  // namespace

TEST(SyncBatchNorm, Equal2d) { compareWithTorch(Split::Equal, {4, 3}); }
TEST(SyncBatchNorm, Unequal2d) { compareWithTorch(Split::Unequal, {4, 3}); }
TEST(SyncBatchNorm, LastRankEmpty2d) { compareWithTorch(Split::LastEmpty, {4, 3}); }
TEST(SyncBatchNorm, Equal1dFlat) { compareWithTorch(Split::Equal, {}); }
TEST(SyncBatchNorm, Unequal1dSequence) { compareWithTorch(Split::Unequal, {6}); }
TEST(SyncBatchNorm, LastRankEmpty1dFlat) { compareWithTorch(Split::LastEmpty, {}); }

TEST(SyncBatchNorm, ScopedCount2d) { compareWithTorch(Split::Unequal, {4, 3}, Count::Scoped); }
TEST(SyncBatchNorm, ScopedCountLastRankEmpty1d) { compareWithTorch(Split::LastEmpty, {}, Count::Scoped); }
TEST(SyncBatchNorm, ChannelsLastKept) { compareWithTorch(Split::Unequal, {4, 3}, Count::Scoped, true); }
TEST(SyncBatchNorm, ChannelsLastEmptyRank) { compareWithTorch(Split::LastEmpty, {5, 2}, Count::Reduced, true); }

TEST(SyncBatchNorm, WithoutCommIsTorchBatchNorm) {
  at::manual_seed(1);
  const at::Tensor x = at::randn({6, 3, 2, 2});
  SyncBatchNorm sbn(SyncBatchNormOptions{3});
  torch::nn::BatchNorm2d ref(3);
  EXPECT_TRUE(at::equal(sbn->forward(x), ref->forward(x)));
  EXPECT_TRUE(at::equal(sbn->running_var, ref->running_var));
  // Same parameter and buffer names as torch, so state_dicts interoperate.
  EXPECT_EQ(sbn->named_parameters().keys(), ref->named_parameters().keys());
  EXPECT_EQ(sbn->named_buffers().keys(), ref->named_buffers().keys());
}

TEST(SyncBatchNorm, ConvertSetsCommOrNamesTheUnconvertibleModule) {
  struct Holder : torch::nn::Module {
    Holder() {
      sbn = register_module("sbn", SyncBatchNorm(SyncBatchNormOptions{2}));
      dict = register_module("dict", torch::nn::ModuleDict());
      dict->update({{"bn", std::make_shared<torch::nn::BatchNorm2dImpl>(2)}});
    }
    SyncBatchNorm sbn{nullptr};
    torch::nn::ModuleDict dict{nullptr};
  } holder;
  EXPECT_EQ(convertSyncBatchNorm(holder, comm()), 2);
  EXPECT_EQ(holder.sbn->comm(), comm());
  auto converted = std::dynamic_pointer_cast<SyncBatchNormImpl>(holder.dict["bn"]);
  ASSERT_TRUE(converted);
  EXPECT_EQ(converted->comm(), comm());

  struct Bad : torch::nn::Module {
    Bad() {
      sbn = register_module("sbn", SyncBatchNorm(SyncBatchNormOptions{2}));
      features = register_module("features", torch::nn::Sequential(torch::nn::BatchNorm2d(2)));
    }
    SyncBatchNorm sbn{nullptr};
    torch::nn::Sequential features{nullptr};
  } bad;
  try {
    convertSyncBatchNorm(bad, comm());
    ADD_FAILURE() << "expected DistError";
  } catch (const DistError& e) {
    EXPECT_NE(std::string(e.what()).find("'features.0'"), std::string::npos) << e.what();
  }
  EXPECT_EQ(bad.sbn->comm(), nullptr);  // nothing changed on failure
}

TEST(SyncBatchNorm, GlobalBatchOfOneValueThrows) {
  // Every rank sees the same global count, so all throw together (no desync).
  SyncBatchNorm sbn(SyncBatchNormOptions{2}, comm());
  const at::Tensor x = comm()->rank() == 0 ? at::randn({1, 2}) : at::randn({0, 2});
  EXPECT_THROW(sbn->forward(x), DistError);
  // From the scope: thrown before any collective, on every rank alike.
  std::vector<int64_t> samples(static_cast<size_t>(comm()->size()), 0);
  samples[0] = 1;
  GlobalBatchScope scope(samples);
  EXPECT_THROW(sbn->forward(x), DistError);
}

// ----- the CPU kernels ---------------------------------------------------------------------

double relDiff(const at::Tensor& a, const at::Tensor& b) {
  return ((a.to(at::kDouble) - b.to(at::kDouble)).abs() / (b.to(at::kDouble).abs() + 1e-12)).max().item<double>();
}

TEST(BatchNormKernels, SumsMatchFloat64InBothLayoutsAndKeepDigitsFarFromZero) {
  at::manual_seed(7);
  // A mean 300 standard deviations from zero: plain float sums of x and x^2 would leave the
  // variance (E[x^2] - E[x]^2) with few correct digits; the kernels keep it to ~1e-5.
  for (bool cl : {false, true}) {
    at::Tensor x = at::randn({6, 5, 33, 31}) * 0.5 + 150;
    if (cl) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    auto [s1, s2] = bn::channelSums(x);
    const at::Tensor xd = x.to(at::kDouble);
    const double n = static_cast<double>(x.numel() / 5);
    const at::Tensor mean = s1 / n, var = s2 / n - mean * mean;
    EXPECT_LT(relDiff(mean, xd.mean({0, 2, 3})), 1e-7) << "channels_last " << cl;
    EXPECT_LT(relDiff(var, xd.var({0, 2, 3}, /*unbiased=*/false)), 1e-4) << "channels_last " << cl;
  }
  const at::Tensor flat = at::randn({37, 4}) + 3;  // [N, C]
  auto [f1, f2] = bn::channelSums(flat);
  EXPECT_LT(relDiff(f1, flat.to(at::kDouble).sum(0)), 1e-6);
  EXPECT_LT(relDiff(f2, flat.to(at::kDouble).pow(2).sum(0)), 1e-6);
}

TEST(BatchNormKernels, AffineAndGradientPassesMatchAtenArithmetic) {
  at::manual_seed(8);
  for (bool cl : {false, true}) {
    at::Tensor x = at::randn({3, 6, 9, 7}), dy = at::randn({3, 6, 9, 7});
    if (cl) x = x.contiguous(at::MemoryFormat::ChannelsLast), dy = dy.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor a = at::randn({6}, at::kDouble), b = at::randn({6}, at::kDouble), c = at::randn({6}, at::kDouble);
    const at::Tensor mean = at::randn({6}, at::kDouble);
    auto view = [](const at::Tensor& v) { return v.view({1, -1, 1, 1}); };
    const at::Tensor xd = x.to(at::kDouble), dyd = dy.to(at::kDouble);
    const at::Tensor y = bn::channelAffine(x, a, b);
    EXPECT_EQ(y.is_contiguous(at::MemoryFormat::ChannelsLast), cl);
    EXPECT_LT((y.to(at::kDouble) - (xd * view(a) + view(b))).abs().max().item<double>(), 1e-5);
    auto [g1, g2] = bn::gradSums(dy, x, mean);
    EXPECT_LT(relDiff(g1, dyd.sum({0, 2, 3})), 1e-5);
    EXPECT_LT(relDiff(g2, (dyd * (xd - view(mean))).sum({0, 2, 3})), 1e-5);
    const at::Tensor gi = bn::gradAffine(dy, x, a, b, c);
    EXPECT_LT((gi.to(at::kDouble) - (dyd * view(a) + xd * view(b) + view(c))).abs().max().item<double>(), 1e-5);
  }
}

TEST(BatchNormKernels, SameSumsForAnyNumberOfThreads) {
  at::manual_seed(9);
  const at::Tensor planes = at::randn({16, 8, 40, 40}), rows = planes.contiguous(at::MemoryFormat::ChannelsLast);
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const auto p1 = bn::channelSums(planes), r1 = bn::channelSums(rows);
  at::set_num_threads(2);
  const auto p2 = bn::channelSums(planes), r2 = bn::channelSums(rows);
  at::set_num_threads(before);
  EXPECT_TRUE(at::equal(p1.first, p2.first) && at::equal(p1.second, p2.second));
  EXPECT_TRUE(at::equal(r1.first, r2.first) && at::equal(r1.second, r2.second));
}
