// EfficientNet-B0..B3 as torchvision builds them: features.0 stem (conv-BN-SiLU), features.1..7
// stages of MBConv blocks (expand 1x1, depthwise kxk, squeeze-excitation, project 1x1, stochastic
// depth on residual branches), features.8 1x1 head conv, avgpool, classifier (Dropout, Linear).
// SiLU and BatchNorm are intrinsic to the architecture, so model.activation/batch_norm do not
// apply; model.dropout overrides the classifier dropout (0.2 for B0/B1, 0.3 for B2/B3).
#include <cmath>

#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/utils.h>

#include "distributed/SyncBatchNorm.h"
#include "src/models/Layers.h"

namespace slidetrain::zoo {
namespace {

using torch::nn::Sequential;

/// torchvision's _make_divisible: round to a multiple of 8, never dropping more than 10%.
int64_t makeDivisible(double v, int64_t divisor = 8) {
  int64_t rounded = std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) /
                                                   divisor * divisor);
  if (rounded < 0.9 * v) rounded += divisor;
  return rounded;
}

/// Conv2dNormActivation: conv (no bias) -> BN -> optional SiLU, as a Sequential (keys .0/.1).
Stack convNormAct(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t groups,
                  bool act) {
  Stack seq;
  seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k)
                                       .stride(stride).padding((k - 1) / 2).groups(groups)
                                       .bias(false)));
  seq->push_back(dist::SyncBatchNorm(dist::SyncBatchNormOptions{out}));
  if (act) seq->push_back(Activation("silu"));
  return seq;
}

class SqueezeExcitationImpl : public torch::nn::Module {
 public:
  SqueezeExcitationImpl(int64_t channels, int64_t squeeze)
      : fc1_(register_module("fc1", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, squeeze, 1)))),
        fc2_(register_module("fc2", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeeze, channels, 1)))) {}

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor s = x.mean({2, 3}, /*keepdim=*/true);
    s = at::sigmoid(fc2_->forward(at::silu(fc1_->forward(s))));
    return x * s;
  }

 private:
  torch::nn::Conv2d fc1_, fc2_;
};
TORCH_MODULE(SqueezeExcitation);

class MBConvImpl : public torch::nn::Module {
 public:
  MBConvImpl(double expandRatio, int64_t k, int64_t stride, int64_t in, int64_t out,
             double stochasticDepth)
      : residual_(stride == 1 && in == out), dropProb_(stochasticDepth) {
    Sequential block;
    int64_t expanded = makeDivisible(in * expandRatio);
    if (expanded != in) block->push_back(convNormAct(in, expanded, 1, 1, 1, true));
    block->push_back(convNormAct(expanded, expanded, k, stride, expanded, true));
    block->push_back(SqueezeExcitation(expanded, std::max<int64_t>(1, in / 4)));
    block->push_back(convNormAct(expanded, out, 1, 1, 1, false));
    block_ = register_module("block", block);
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = block_->forward(x);
    if (!residual_) return y;
    if (is_training() && dropProb_ > 0) {
      // Stochastic depth, "row" mode: drop the whole residual branch per sample.
      double keep = 1.0 - dropProb_;
      at::Tensor mask = at::empty({y.size(0), 1, 1, 1}, y.options()).bernoulli_(keep);
      y = y * mask / keep;
    }
    return y + x;
  }

 private:
  Sequential block_{nullptr};
  bool residual_;
  double dropProb_;
};
TORCH_MODULE(MBConv);

struct StageConfig {
  double expand;
  int64_t kernel, stride, in, out, layers;
};

}  // namespace

std::shared_ptr<Model> buildEfficientNet(const ModelOptions& o, int variant) {
  static const double width[] = {1.0, 1.0, 1.1, 1.2};
  static const double depth[] = {1.0, 1.1, 1.2, 1.4};
  static const double dropout[] = {0.2, 0.2, 0.3, 0.3};
  const double wm = width[variant], dm = depth[variant];
  std::vector<StageConfig> stages = {{1, 3, 1, 32, 16, 1},   {6, 3, 2, 16, 24, 2},
                                     {6, 5, 2, 24, 40, 2},   {6, 3, 2, 40, 80, 3},
                                     {6, 5, 1, 80, 112, 3},  {6, 5, 2, 112, 192, 4},
                                     {6, 3, 1, 192, 320, 1}};
  int64_t totalBlocks = 0;
  for (auto& s : stages) {
    s.in = makeDivisible(s.in * wm);
    s.out = makeDivisible(s.out * wm);
    s.layers = static_cast<int64_t>(std::ceil(s.layers * dm));
    totalBlocks += s.layers;
  }
  Sequential features;
  features->push_back(convNormAct(o.inChannels, stages[0].in, 3, 2, 1, true));
  int64_t blockId = 0;
  for (const auto& s : stages) {
    Stack stage;
    for (int64_t i = 0; i < s.layers; ++i) {
      // Stochastic depth grows linearly with depth, 0 -> 0.2 (torchvision's default).
      double sd = 0.2 * static_cast<double>(blockId++) / static_cast<double>(totalBlocks);
      stage->push_back(MBConv(s.expand, s.kernel, i == 0 ? s.stride : 1, i == 0 ? s.in : s.out,
                              s.out, sd));
    }
    features->push_back(stage);
  }
  const int64_t lastIn = stages.back().out, lastOut = 4 * lastIn;
  features->push_back(convNormAct(lastIn, lastOut, 1, 1, 1, true));

  const double p = dropoutRate(o, dropout[variant]);
  Sequential classifier;
  if (o.head == "bn_dense") {
    classifier = makeBnDenseHead(lastOut, o, p);
  } else {
    classifier->push_back(torch::nn::Dropout(p));
    classifier->push_back(torch::nn::Linear(lastOut, o.numClasses));
  }
  auto net = std::make_shared<FeatureClassifierNet>(features, torch::nn::AdaptiveAvgPool2d(1),
                                                    classifier);
  initConvWeights(*net);
  torch::NoGradGuard noGrad;
  for (auto& sub : net->modules(false))
    if (auto* fc = sub->as<torch::nn::LinearImpl>()) {
      double range = 1.0 / std::sqrt(static_cast<double>(fc->options.out_features()));
      torch::nn::init::uniform_(fc->weight, -range, range);
      fc->bias.zero_();
    }
  return net;
}

}  // namespace slidetrain::zoo
