// MIL models (src/mil/MilModels.h): shapes and attention of every model, permutation invariance
// of the pooling models, CLAM's instance loss and its unused parameters, gradients, overfitting
// tiny synthetic bags, determinism, a 50k-patch TransMIL bag, bad options and bad bags.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <chrono>
#include <string>
#include <vector>

#include <torch/optim/adam.h>
#include <torch/utils.h>

#include "src/mil/MilModels.h"

using namespace slidetrain::mil;

namespace {

MilModelOptions options(const std::string& name, int64_t d = 16, int classes = 2) {
  MilModelOptions o;
  o.name = name;
  o.inputDim = d;
  o.hidden = 16;
  o.numClasses = classes;
  o.transmilLandmarks = 8;
  return o;
}

std::shared_ptr<MilModel> build(const MilModelOptions& o, uint64_t seed = 1) {
  torch::manual_seed(seed);
  return buildMilModel(o);
}

at::Tensor crossEntropy(const at::Tensor& logits, int64_t label) {
  return at::nll_loss(at::log_softmax(logits, 1), at::full({1}, label, at::kLong));
}

/// Bag loss plus, for clam_sb, the instance loss mixed as the trainer does.
at::Tensor totalLoss(const MilOutput& out, int64_t label, const MilModelOptions& o) {
  const at::Tensor bag = crossEntropy(out.logits, label);
  if (!out.instanceLoss.defined()) return bag;
  return (1.0 - o.clamInstanceWeight) * bag + o.clamInstanceWeight * out.instanceLoss;
}

long peakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

}  // namespace

TEST(MilModels, ShapesAndAttentionOfEveryModel) {
  for (const std::string& name : milModelNames()) {
    for (int classes : {2, 3}) {
      auto model = build(options(name, 16, classes));
      model->eval();
      for (int64_t n : {1, 3, 1000}) {
        SCOPED_TRACE(name + " classes " + std::to_string(classes) + " n " + std::to_string(n));
        const MilOutput out = model->forward(torch::randn({n, 16}), -1);
        EXPECT_EQ(out.logits.sizes(), (at::IntArrayRef{1, classes}));
        EXPECT_TRUE(out.logits.isfinite().all().item<bool>());
        ASSERT_EQ(out.attention.sizes(), (at::IntArrayRef{n}));
        EXPECT_GE(out.attention.min().item<float>(), 0.0f);
        EXPECT_LE(out.attention.max().item<float>(), 1.0f);
        EXPECT_NEAR(out.attention.sum().item<double>(), 1.0, 1e-4);
        EXPECT_FALSE(out.instanceLoss.defined());
      }
    }
  }
}

TEST(MilModels, AttentionIsASoftmaxOverPatches) {
  for (const std::string name : {"abmil", "clam_sb"}) {
    auto model = build(options(name));
    model->eval();
    const MilOutput out = model->forward(torch::randn({50, 16}), -1);
    EXPECT_NEAR(out.attention.sum().item<double>(), 1.0, 1e-5) << name;
    // Not uniform: the weights depend on the patches.
    EXPECT_GT((out.attention.max() - out.attention.min()).item<double>(), 1e-4) << name;
  }
  auto mean = build(options("mean_pool"));
  EXPECT_TRUE(mean->forward(torch::randn({4, 16}), -1).attention.allclose(torch::full({4}, 0.25)));
}

TEST(MilModels, PoolingLogitsIgnoreThePatchOrder) {
  for (const std::string name : {"mean_pool", "max_pool", "abmil", "clam_sb"}) {
    auto model = build(options(name));
    model->eval();
    torch::manual_seed(7);
    const at::Tensor bag = torch::randn({200, 16});
    const at::Tensor perm = torch::randperm(200);
    const MilOutput a = model->forward(bag, -1);
    const MilOutput b = model->forward(bag.index_select(0, perm), -1);
    EXPECT_TRUE(a.logits.allclose(b.logits, 1e-5, 1e-5)) << name << a.logits << b.logits;
    // The attention moves with its patch.
    EXPECT_TRUE(a.attention.index_select(0, perm).allclose(b.attention, 1e-5, 1e-7)) << name;
  }
}

TEST(MilModels, ClamInstanceLossOnlyWithALabel) {
  auto model = build(options("clam_sb"));
  const at::Tensor bag = torch::randn({30, 16});
  const MilOutput withLabel = model->forward(bag, 1);
  ASSERT_TRUE(withLabel.instanceLoss.defined());
  EXPECT_EQ(withLabel.instanceLoss.dim(), 0);
  EXPECT_GT(withLabel.instanceLoss.item<double>(), 0.0);
  EXPECT_FALSE(model->forward(bag, -1).instanceLoss.defined());
  // One patch: no top-k / bottom-k pair, a zero loss rather than an error.
  EXPECT_EQ(model->forward(torch::randn({1, 16}), 0).instanceLoss.item<double>(), 0.0);
  EXPECT_THROW(model->forward(bag, 2), std::invalid_argument);  // label out of range
  // Other models never return one.
  EXPECT_FALSE(build(options("abmil"))->forward(bag, 1).instanceLoss.defined());
}

// Binary CLAM with label 1 uses only instance classifier 1: classifier 0 gets no gradient in
// this step, which the distributed gradient sync has to treat as zero.
TEST(MilModels, ClamBinaryStepLeavesTheOtherInstanceClassifierWithoutGradient) {
  const MilModelOptions o = options("clam_sb");
  auto model = build(o);
  const MilOutput out = model->forward(torch::randn({30, 16}), 1);
  totalLoss(out, 1, o).backward();
  std::vector<std::string> withoutGrad;
  for (const auto& p : model->named_parameters()) {
    if (!p.value().grad().defined()) withoutGrad.push_back(p.key());
  }
  EXPECT_EQ(withoutGrad, (std::vector<std::string>{"instance_classifiers.0.weight", "instance_classifiers.0.bias"}));
  EXPECT_GT(model->named_parameters()["instance_classifiers.1.weight"].grad().abs().sum().item<double>(), 0.0);
}

TEST(MilModels, GradientReachesEveryParameter) {
  for (const std::string name : {"mean_pool", "max_pool", "abmil", "transmil"}) {
    MilModelOptions o = options(name, 16, 3);
    o.dropout = 0.0;
    auto model = build(o);
    totalLoss(model->forward(torch::randn({64, 16}), 2), 2, o).backward();
    for (const auto& p : model->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << name << ": " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << name << ": " << p.key();
    }
  }
}

// 8 bags of 16 patches in 8 dimensions; the 4 positive bags hold 3 patches whose mean is
// shifted by +1.5. Every model reaches 100 % training accuracy in at most 300 Adam steps.
TEST(MilModels, EveryModelOverfitsTinySyntheticBags) {
  torch::manual_seed(3);
  std::vector<at::Tensor> bags;
  std::vector<int64_t> labels;
  for (int b = 0; b < 8; ++b) {
    at::Tensor bag = torch::randn({16, 8});
    const int64_t label = b % 2;
    if (label == 1) bag.narrow(0, 4 * (b / 2), 3).add_(1.5);
    bags.push_back(bag);
    labels.push_back(label);
  }
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& name : milModelNames()) {
    MilModelOptions o = options(name, 8);
    auto model = build(o);
    torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(5e-3));
    auto accuracy = [&] {
      torch::NoGradGuard noGrad;
      model->eval();
      int correct = 0;
      for (size_t i = 0; i < bags.size(); ++i) {
        correct += model->forward(bags[i], -1).logits.argmax(1).item<int64_t>() == labels[i];
      }
      model->train();
      return static_cast<double>(correct) / static_cast<double>(bags.size());
    };
    int steps = 0;
    for (; steps < 300 && !(steps % 10 == 0 && accuracy() == 1.0); ++steps) {
      adam.zero_grad();
      for (size_t i = 0; i < bags.size(); ++i) {
        (totalLoss(model->forward(bags[i], labels[i]), labels[i], o) / 8.0).backward();
      }
      adam.step();
    }
    EXPECT_EQ(accuracy(), 1.0) << name << " after " << steps << " steps";
    std::printf("[ overfit  ] %s: 100 %% after %d steps\n", name.c_str(), steps);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ overfit  ] all models: %.2f s\n", seconds);  // printed, not asserted: a loaded CI
                                                               // machine took 17 s (speed: bench/)
}

TEST(MilModels, SameSeedSameModelAndOutputs) {
  for (const std::string& name : milModelNames()) {
    auto a = build(options(name), 5);
    auto b = build(options(name), 5);
    torch::manual_seed(9);
    const at::Tensor bag = torch::randn({77, 16});
    // Train mode: dropout draws from the seeded generator too.
    torch::manual_seed(11);
    const MilOutput x = a->forward(bag, 1);
    torch::manual_seed(11);
    const MilOutput y = b->forward(bag, 1);
    EXPECT_TRUE(x.logits.equal(y.logits)) << name;
    EXPECT_TRUE(x.attention.equal(y.attention)) << name;
  }
}

// With one landmark per token (segments of length 1) Nystrom attention is exact up to the
// iterative pseudo-inverse: the class token's heatmap row equals softmax(q_cls K^T / sqrt(d))
// computed here from the parameters (one layer, no PPEG; 3 patches -> a 2x2 grid whose 4th
// cell repeats patch 0; + the class token = 5 tokens, zero-padded at the front to 8).
TEST(MilModels, TransMilAttentionRowMatchesExactAttentionWhenEveryTokenIsALandmark) {
  MilModelOptions o = options("transmil");
  o.transmilLayers = 1;
  o.transmilLandmarks = 8;
  auto model = build(o);
  model->eval();
  torch::NoGradGuard noGrad;
  auto p = model->named_parameters();
  p["layers.0.attn.to_qkv.weight"].mul_(3.0);  // larger q.k: a row far from uniform
  const at::Tensor bag = torch::randn({3, 16});
  const MilOutput out = model->forward(bag, -1);

  const at::Tensor h = at::relu(at::linear(bag, p["fc1.weight"], p["fc1.bias"]));
  const at::Tensor x = at::cat({p["cls_token"][0], h, h.narrow(0, 0, 1)});  // [5, 16]
  const at::Tensor xn = at::layer_norm(x, {16}, p["layers.0.norm.weight"], p["layers.0.norm.bias"]);
  const at::Tensor qk = at::linear(xn, p["layers.0.attn.to_qkv.weight"]);
  const int64_t heads = o.transmilHeads, d = 16 / heads;
  const at::Tensor q = qk.narrow(1, 0, 16).reshape({5, heads, d}).permute({1, 0, 2});
  const at::Tensor k = at::cat({at::zeros({3, 16}), qk.narrow(1, 16, 16)}).reshape({8, heads, d}).permute({1, 0, 2});
  const at::Tensor row = at::softmax(q.narrow(1, 0, 1).matmul(k.transpose(1, 2)) / std::sqrt(double(d)), -1)
                             .mean(0)
                             .reshape({8});
  at::Tensor expected = row.narrow(0, 4, 3).clone();  // the 3 patches (after 3 pads + cls)
  expected[0] += row[7];                              // the grid's copy of patch 0
  expected /= expected.sum();
  ASSERT_GT((expected.max() - expected.min()).item<double>(), 0.1) << expected;
  // 6 pseudo-inverse iterations (nystrom-attention's default) leave an error of ~1e-3.
  EXPECT_TRUE(out.attention.allclose(expected, 0.0, 5e-3)) << out.attention << expected;
}

// O(N m) attention: a 50k-patch bag runs forward on the CPU well under 1 GiB (exact attention
// would need 4 heads x 50k^2 floats = 40 GB); its time is printed, not asserted.
TEST(MilModels, TransMilFitsA50kPatchBag) {
  MilModelOptions o = options("transmil", 32);
  o.hidden = 32;
  o.transmilLandmarks = 64;
  auto model = build(o);
  model->eval();
  const at::Tensor bag = torch::randn({50000, 32});
  const long rssBefore = peakRssMiB();
  const auto start = std::chrono::steady_clock::now();
  MilOutput out;
  {
    torch::NoGradGuard noGrad;
    out = model->forward(bag, -1);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long rssAfter = peakRssMiB();
  std::printf("[ 50k bag  ] transmil forward %.2f s, peak RSS %ld MiB (+%ld MiB)\n", seconds, rssAfter,
              rssAfter - rssBefore);
  EXPECT_EQ(out.logits.sizes(), (at::IntArrayRef{1, 2}));
  EXPECT_TRUE(out.logits.isfinite().all().item<bool>());
  ASSERT_EQ(out.attention.size(0), 50000);
  EXPECT_NEAR(out.attention.sum().item<double>(), 1.0, 1e-4);
  EXPECT_LT(rssAfter - rssBefore, 1024);
}

TEST(MilModels, ValidateNamesTheBadKey) {
  struct Case {
    void (*edit)(MilModelOptions&);
    const char* key;
  };
  const std::vector<Case> cases = {
      {[](MilModelOptions& o) { o.name = "attention"; }, "mil.model"},
      {[](MilModelOptions& o) { o.inputDim = 0; }, "dimension D"},
      {[](MilModelOptions& o) { o.hidden = 0; }, "mil.hidden"},
      {[](MilModelOptions& o) { o.numClasses = 1; }, "at least 2 classes"},
      {[](MilModelOptions& o) { o.dropout = 1.0; }, "mil.dropout"},
      {[](MilModelOptions& o) { o.dropout = -0.1; }, "mil.dropout"},
      {[](MilModelOptions& o) { o.clamK = 0; }, "mil.clam_k"},
      {[](MilModelOptions& o) { o.clamInstanceWeight = 1.5; }, "mil.clam_instance_weight"},
      {[](MilModelOptions& o) { o.transmilLayers = 0; }, "mil.transmil_layers"},
      {[](MilModelOptions& o) { o.transmilHeads = 0; }, "mil.transmil_heads"},
      {[](MilModelOptions& o) { o.transmilLandmarks = 0; }, "mil.transmil_landmarks"},
      {[](MilModelOptions& o) { o.name = "transmil"; o.hidden = 30; }, "mil.transmil_heads"},
  };
  for (const Case& c : cases) {
    MilModelOptions o = options("abmil");
    c.edit(o);
    try {
      o.validate();
      ADD_FAILURE() << "accepted: " << c.key;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.key), std::string::npos) << e.what();
    }
    EXPECT_THROW(buildMilModel(o), std::invalid_argument) << c.key;
  }
  EXPECT_NO_THROW(options("abmil").validate());
}

TEST(MilModels, BadBagsAreRejected) {
  for (const std::string& name : milModelNames()) {
    auto model = build(options(name));
    EXPECT_THROW(model->forward(torch::randn({5, 15}), -1), std::invalid_argument) << name;
    EXPECT_THROW(model->forward(torch::randn({0, 16}), -1), std::invalid_argument) << name;
    EXPECT_THROW(model->forward(torch::randn({1, 5, 16}), -1), std::invalid_argument) << name;
    EXPECT_THROW(model->forward(torch::ones({5, 16}, at::kLong), -1), std::invalid_argument) << name;
    // Double features are converted to the parameters' float.
    EXPECT_EQ(model->forward(torch::randn({5, 16}, at::kDouble), -1).logits.scalar_type(), at::kFloat);
  }
}
