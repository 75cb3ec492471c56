// GradSync under mpirun: N ranks x B samples give the same gradients as 1 rank x N*B (each rank
// computes the full-batch reference locally), with SyncBatchNorm in the model, unequal and
// empty local batches, accumulation, tiny buckets, and a model mismatch.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <ATen/Context.h>
#include <torch/autograd.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

#include <numeric>

#include "distributed/GradSync.h"
#include "distributed/MpiComm.h"
#include "distributed/Sampler.h"
#include "distributed/SyncBatchNorm.h"

using namespace slidetrain::dist;

namespace {

std::shared_ptr<Comm> comm() {
  static auto c = makeComm("mpi", CommOptions{std::chrono::seconds(60)});
  return c;
}

struct Net : torch::nn::Module {
  Net(std::shared_ptr<Comm> c, int hidden = 5) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)));
    bn = register_module("bn", SyncBatchNorm(SyncBatchNormOptions{4}, std::move(c)));
    fc1 = register_module("fc1", torch::nn::Linear(4 * 6 * 6, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, 3));
    unused = register_module("unused", torch::nn::Linear(3, 3));
  }
  at::Tensor forward(const at::Tensor& x) {
    return fc2(at::relu(fc1(at::relu(bn(conv(x))).flatten(1))));
  }
  torch::nn::Conv2d conv{nullptr};
  SyncBatchNorm bn{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, unused{nullptr};
};

void copyState(torch::nn::Module& dst, torch::nn::Module& src) {
  c10::NoGradGuard g;
  auto s = src.named_parameters();
  for (auto& p : dst.named_parameters()) p.value().copy_(s[p.key()]);
  auto b = src.named_buffers();
  for (auto& p : dst.named_buffers()) p.value().copy_(b[p.key()]);
}

void clearGrads(torch::nn::Module& m) {
  for (auto& p : m.parameters()) p.mutable_grad() = at::Tensor();
}

double maxGradDiff(torch::nn::Module& a, torch::nn::Module& b, double scale = 1.0) {
  double worst = 0;
  auto pb = b.named_parameters();
  for (auto& p : a.named_parameters()) {
    const at::Tensor ga = p.value().grad(), gb = pb[p.key()].grad();
    if (!ga.defined() && !gb.defined()) continue;
    const at::Tensor za = ga.defined() ? ga : at::zeros_like(p.value());
    const at::Tensor zb = gb.defined() ? gb : at::zeros_like(p.value());
    worst = std::max(worst, (za - zb * scale).abs().max().item<double>());
  }
  return worst;
}

/// Global data for a batch: identical on every rank.
struct Data {
  at::Tensor x, y;
};
Data makeData(int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  return {at::randn({n, 3, 8, 8}), at::randn({n, 3})};
}

/// One micro-batch: this rank's slice of global batch k, loss scaled for the global mean.
void localBackward(Net& net, const Data& d, int64_t globalBatch, int64_t k, double extraScale) {
  const int w = comm()->size(), r = comm()->rank();
  std::vector<int64_t> order(static_cast<size_t>(d.x.size(0)));
  std::iota(order.begin(), order.end(), 0);
  const auto idx = rankSliceOfBatch(order, globalBatch, k, r, w);
  const int64_t begin = k * globalBatch;
  const int64_t globalCount = std::min<int64_t>(globalBatch, d.x.size(0) - begin);
  const at::Tensor sel = at::tensor(idx, at::kLong);
  const at::Tensor out = net.forward(d.x.index_select(0, sel));
  const at::Tensor loss = (out - d.y.index_select(0, sel)).pow(2).sum() *
                          (lossScaleForGlobalMean(globalCount, w) * extraScale);
  loss.backward();
}

void referenceBackward(Net& net, const Data& d, int64_t globalBatch, int64_t k, double extraScale) {
  const int64_t begin = k * globalBatch;
  const int64_t count = std::min<int64_t>(globalBatch, d.x.size(0) - begin);
  const at::Tensor out = net.forward(d.x.narrow(0, begin, count));
  const at::Tensor loss = (out - d.y.narrow(0, begin, count)).pow(2).sum() * (extraScale / count);
  loss.backward();
}

/// Builds the distributed net (rank-dependent init, so GradSync's broadcast matters) and a
/// reference net with the synchronised weights.
struct Pair {
  std::shared_ptr<Net> dist, ref;
  std::unique_ptr<GradSync> sync;
};
Pair makePair(GradSyncOptions opts = {}) {
  Pair p;
  at::manual_seed(100 + comm()->rank());
  p.dist = std::make_shared<Net>(comm());
  p.sync = std::make_unique<GradSync>(comm(), *p.dist, opts);
  p.ref = std::make_shared<Net>(nullptr);
  copyState(*p.ref, *p.dist);
  return p;
}

}  // namespace

TEST(GradSync, BroadcastsRankZeroWeights) {
  auto p = makePair();
  at::Tensor w = p.dist->fc1->weight.detach().clone();
  at::Tensor all = comm()->allGather(w);
  for (int r = 1; r < comm()->size(); ++r) EXPECT_TRUE(at::equal(all[r], all[0]));
  EXPECT_EQ(p.sync->numBuckets(), 1u);  // the whole net is far below 1 MB
}

TEST(GradSync, NRanksMatchOneRankOverSeveralStepsAndBatchShapes) {
  const int w = comm()->size();
  auto p = makePair();
  const int64_t g = 4 * w;
  // Batch 0: equal slices. Batch 1: trailing partial batch of w+1 (unequal slices). Then a
  // dataset whose last batch holds w-1 samples: the last rank gets none.
  const Data unequal = makeData(g + w + 1, 7), empty = makeData(g + w - 1, 8);
  int step = 0;
  for (auto [data, k] : {std::pair{&unequal, 0}, {&unequal, 1}, {&empty, 1}}) {
    SCOPED_TRACE("step " + std::to_string(step++));
    clearGrads(*p.dist);
    clearGrads(*p.ref);
    localBackward(*p.dist, *data, g, k, 1.0);
    p.sync->finalize();
    referenceBackward(*p.ref, *data, g, k, 1.0);
    EXPECT_LT(maxGradDiff(*p.dist, *p.ref), 1e-5);
    EXPECT_LT((p.dist->bn->running_var - p.ref->bn->running_var).abs().max().item<double>(), 1e-5);
    // Globally unused parameters get a defined zero gradient on every rank.
    ASSERT_TRUE(p.dist->unused->weight.grad().defined());
    EXPECT_EQ(p.dist->unused->weight.grad().abs().max().item<float>(), 0.0f);
  }
}

TEST(GradSync, ChannelsLastWeightsGetChannelsLastGradientsWithTheRightValues) {
  // train.channels_last: the conv weight is NHWC before GradSync is built. Its .grad() becomes a
  // bucket view with the weight's own strides (as DDP's), and the first step's gradient - copied
  // into that view - and later ones - accumulated into it in place - equal the reference.
  const int w = comm()->size();
  at::manual_seed(100 + comm()->rank());
  auto net = std::make_shared<Net>(comm());
  {
    c10::NoGradGuard g;
    net->conv->weight.set_data(net->conv->weight.contiguous(at::MemoryFormat::ChannelsLast));
  }
  GradSync sync(comm(), *net);
  auto ref = std::make_shared<Net>(nullptr);
  copyState(*ref, *net);
  const Data d = makeData(4 * w * 3, 12);
  for (int k = 0; k < 3; ++k) {
    SCOPED_TRACE("step " + std::to_string(k));
    if (k == 0) {
      clearGrads(*net);  // undefined: GradSync copies the first gradient into its view
    } else {
      for (auto& p : net->parameters()) p.mutable_grad().zero_();  // in place, as zero_grad
    }
    clearGrads(*ref);
    localBackward(*net, d, 4 * w, k, 1.0);
    sync.finalize();
    referenceBackward(*ref, d, 4 * w, k, 1.0);
    EXPECT_LT(maxGradDiff(*net, *ref), 1e-5);
    EXPECT_TRUE(net->conv->weight.grad().is_contiguous(at::MemoryFormat::ChannelsLast));
  }
}

TEST(GradSync, WithoutSyncLocalGradientsDiffer) {
  // Guards against a vacuous comparison: with w > 1, un-averaged local gradients are wrong.
  if (comm()->size() == 1) GTEST_SKIP() << "needs more than one rank";
  auto p = makePair();
  const Data d = makeData(4 * comm()->size(), 9);
  p.sync->setSyncEnabled(false);
  localBackward(*p.dist, d, d.x.size(0), 0, 1.0);
  p.sync->finalize();  // no-op while disabled
  referenceBackward(*p.ref, d, d.x.size(0), 0, 1.0);
  EXPECT_GT(maxGradDiff(*p.dist, *p.ref), 1e-3);
}

TEST(GradSync, AccumulationOverMicroBatchesWithTinyBuckets) {
  GradSyncOptions opts;
  opts.bucketCapMB = 1e-6;  // smaller than any parameter: one bucket each
  opts.firstBucketCapMB = 1e-6;
  auto p = makePair(opts);
  EXPECT_EQ(p.sync->numBuckets(), p.dist->parameters().size());
  const int w = comm()->size();
  const Data d = makeData(3 * 2 * w + 1, 11);  // 3 micro-batches of 2w, the last one partial
  for (int m = 0; m < 4; ++m) {
    p.sync->setSyncEnabled(m == 3);
    localBackward(*p.dist, d, 2 * w, m, 0.25);
    referenceBackward(*p.ref, d, 2 * w, m, 0.25);
  }
  p.sync->finalize();
  EXPECT_LT(maxGradDiff(*p.dist, *p.ref), 1e-5);
}

TEST(GradSync, OverlappedBucketsEqualTheSynchronousAverage) {
  // The overlapped path (buckets reduced on MpiComm's communication thread while backward runs,
  // .grad() aliasing the buckets, division in finalize) against the synchronous semantics
  // computed independently: every rank's locally accumulated gradient, all-gathered and
  // averaged. Many one-parameter buckets, default buckets, accumulation over 3 micro-batches,
  // several steps with Optimizer::zero_grad() (in place, detach_()) and one with set-to-none,
  // and both MpiComm paths (communication thread, polled MPI_Iallreduce).
  const int w = comm()->size(), r = comm()->rank();
  for (bool thread : {true, false}) {
    for (double cap : {1e-6, 25.0}) {
      SCOPED_TRACE(std::string(thread ? "comm thread" : "polled") + ", bucket cap " +
                   std::to_string(cap) + " MB");
      CommOptions co{std::chrono::seconds(60)};
      co.commThread = thread;
      auto c = makeComm("mpi", co);  // collective: same order on every rank
      GradSyncOptions opts;
      opts.bucketCapMB = cap;
      opts.firstBucketCapMB = cap;
      at::manual_seed(300 + r);
      Net net(nullptr), local(nullptr);  // plain BatchNorm: the reference needs no collective
      GradSync sync(c, net, opts);
      copyState(local, net);
      if (cap < 1) {
        EXPECT_EQ(sync.numBuckets(), net.parameters().size());
      }
      torch::optim::SGD opt(net.parameters(), 0.1), localOpt(local.parameters(), 0.1);
      for (int step = 0; step < 4; ++step) {
        SCOPED_TRACE("step " + std::to_string(step));
        if (step == 2) {
          clearGrads(net);  // zero_grad(set_to_none): GradSync re-attaches its bucket views
          clearGrads(local);
        } else {
          opt.zero_grad();
          localOpt.zero_grad();
        }
        for (int m = 0; m < 3; ++m) {
          sync.setSyncEnabled(m == 2);
          at::manual_seed(1000 * step + 10 * m + r);  // rank-specific data
          const at::Tensor x = at::randn({2 + r, 3, 8, 8});
          net.forward(x).pow(2).sum().backward();
          local.forward(x).pow(2).sum().backward();
        }
        sync.finalize();
        auto lp = local.named_parameters();
        for (auto& p : net.named_parameters()) {
          const at::Tensor lg = lp[p.key()].grad();
          const at::Tensor mine = lg.defined() ? lg : at::zeros_like(p.value());
          const at::Tensor ref = c->allGather(mine).mean(0);  // the synchronous average
          ASSERT_TRUE(p.value().grad().defined()) << p.key();
          const double tol = 1e-6 * (1.0 + ref.abs().max().item<double>());
          EXPECT_LE((p.value().grad() - ref).abs().max().item<double>(), tol) << p.key();
        }
        // Same update on every rank keeps the replicas equal (and exercises .grad() views).
        opt.step();
        c10::NoGradGuard g;
        for (auto& p : local.named_parameters())
          p.value().copy_(net.named_parameters()[p.key()]);
      }
      at::Tensor wgt = net.fc1->weight.detach().clone();
      at::Tensor all = c->allGather(wgt);
      for (int k = 1; k < w; ++k) EXPECT_TRUE(at::equal(all[k], all[0]));
    }
  }
}

TEST(GradSync, SecondBackwardWithoutFinalizeIsRefusedBeforeTouchingBuckets) {
  auto p = makePair();
  const Data d = makeData(4 * comm()->size(), 13);
  localBackward(*p.dist, d, d.x.size(0), 0, 1.0);
  EXPECT_THROW(localBackward(*p.dist, d, d.x.size(0), 0, 1.0), std::exception);
  p.sync->finalize();  // the first backward's buckets still complete on every rank
  clearGrads(*p.dist);
  clearGrads(*p.ref);
  localBackward(*p.dist, d, d.x.size(0), 0, 1.0);
  p.sync->finalize();
  referenceBackward(*p.ref, d, d.x.size(0), 0, 1.0);
  EXPECT_LT(maxGradDiff(*p.dist, *p.ref), 1e-5);
}

TEST(GradSync, ModelMismatchNamesTheRank) {
  if (comm()->size() == 1) GTEST_SKIP() << "needs more than one rank";
  Net net(comm(), comm()->rank() == 1 ? 6 : 5);
  try {
    GradSync sync(comm(), net);
    ADD_FAILURE() << "expected DistError";
  } catch (const DistError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 has"), std::string::npos) << e.what();
  }
}

TEST(GradSync, OptionsValidate) {
  GradSyncOptions o;
  o.compression = "int8";
  EXPECT_THROW(o.validate(), std::invalid_argument);
  o.compression = "fp16";
  o.bucketCapMB = 0;
  EXPECT_THROW(o.validate(), std::invalid_argument);
}
