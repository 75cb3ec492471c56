// ResNet-18/34 (BasicBlock) and ResNet-50 (Bottleneck, stride on the 3x3 conv as torchvision's
// "v1.5"), with torchvision's names: conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc.
// BatchNorm is part of the architecture here (always on, before the activation).
#include <array>

#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/utils.h>

#include "distributed/SyncBatchNorm.h"
#include "src/models/Layers.h"

namespace slidetrain::zoo {
namespace {

using torch::nn::Sequential;

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(k / 2).bias(false));
}

dist::SyncBatchNorm bn(int64_t n) { return dist::SyncBatchNorm(dist::SyncBatchNormOptions{n}); }

class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t in, int64_t planes, int64_t stride, bool bottleneck, const ModelOptions& o)
      : act_(Activation(o.activation)) {
    const int64_t expansion = bottleneck ? 4 : 1;
    const int64_t out = planes * expansion;
    // (in, out, kernel, stride) per conv; registered conv1, bn1, conv2, bn2, ... in forward
    // order like torchvision, so state_dict order and freezeUpTo agree with PyTorch's.
    std::vector<std::array<int64_t, 4>> spec;
    if (bottleneck)
      spec = {{in, planes, 1, 1}, {planes, planes, 3, stride}, {planes, out, 1, 1}};
    else
      spec = {{in, planes, 3, stride}, {planes, out, 3, 1}};
    for (size_t i = 0; i < spec.size(); ++i) {
      auto [cin, cout, k, s] = spec[i];
      convs_.push_back(register_module("conv" + std::to_string(i + 1), conv(cin, cout, k, s)));
      bns_.push_back(register_module("bn" + std::to_string(i + 1), bn(cout)));
    }
    if (stride != 1 || in != out) {
      downsample_ = Sequential(conv(in, out, 1, stride), bn(out));
      register_module("downsample", downsample_);
    }
  }

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = x;
    for (size_t i = 0; i < convs_.size(); ++i) {
      y = bns_[i]->forward(convs_[i]->forward(y));
      if (i + 1 < convs_.size()) y = act_->forward(y);
    }
    at::Tensor identity = downsample_.is_empty() ? x : downsample_->forward(x);
    return act_->forward(y + identity);
  }

 private:
  std::vector<torch::nn::Conv2d> convs_;
  std::vector<dist::SyncBatchNorm> bns_;
  Sequential downsample_{nullptr};
  Activation act_;
};
TORCH_MODULE(ResBlock);

class ResNet : public ZooModel {
 public:
  ResNet(const ModelOptions& o, const std::vector<int>& blocks, bool bottleneck)
      : act_(Activation(o.activation)) {
    conv1_ = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(
                                          o.inChannels, 64, 7).stride(2).padding(3).bias(false)));
    bn1_ = register_module("bn1", bn(64));
    maxpool_ = torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1));
    int64_t in = 64;
    const int64_t expansion = bottleneck ? 4 : 1;
    for (int stage = 0; stage < 4; ++stage) {
      int64_t planes = 64 << stage;
      Sequential layer;
      for (int b = 0; b < blocks[stage]; ++b) {
        layer->push_back(ResBlock(in, planes, (b == 0 && stage > 0) ? 2 : 1, bottleneck, o));
        in = planes * expansion;
      }
      layers_.push_back(register_module("layer" + std::to_string(stage + 1), layer));
    }
    if (o.head == "bn_dense") {
      fc_ = register_module("fc", makeBnDenseHead(in, o, dropoutRate(o, 0.5)));
    } else {
      linear_ = register_module("fc", torch::nn::Linear(in, o.numClasses));
    }
    initConvWeights(*this);
  }

  at::Tensor embed(const at::Tensor& x) override {
    at::Tensor y = maxpool_->forward(act_->forward(bn1_->forward(conv1_->forward(x))));
    for (auto& layer : layers_) y = layer->forward(y);
    return y.mean({2, 3});  // adaptive average pool to 1x1 + flatten
  }

  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor y = embed(x);
    return linear_.is_empty() ? fc_->forward(y) : linear_->forward(y);
  }

 private:
  torch::nn::Conv2d conv1_{nullptr};
  dist::SyncBatchNorm bn1_{nullptr};
  torch::nn::MaxPool2d maxpool_{nullptr};
  std::vector<Sequential> layers_;
  Sequential fc_{nullptr};
  torch::nn::Linear linear_{nullptr};
  Activation act_;
};

}  // namespace

std::shared_ptr<Model> buildResNet(const ModelOptions& o, int depth) {
  if (depth == 18) return std::make_shared<ResNet>(o, std::vector<int>{2, 2, 2, 2}, false);
  if (depth == 34) return std::make_shared<ResNet>(o, std::vector<int>{3, 4, 6, 3}, false);
  return std::make_shared<ResNet>(o, std::vector<int>{3, 4, 6, 3}, true);
}

}  // namespace slidetrain::zoo
