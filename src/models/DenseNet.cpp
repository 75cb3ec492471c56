// DenseNet-121 (growth 32, blocks 6-12-24-16, bottleneck 4x, compression 0.5) with torchvision's
// names: features.conv0/norm0/pool0, features.denseblock1.denselayer1.norm1/conv1/norm2/conv2,
// features.transition1.norm/conv, features.norm5, classifier. BatchNorm is always on and comes
// before the activation (pre-activation layers are what makes DenseNet DenseNet).
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

dist::SyncBatchNorm bn(int64_t n) { return dist::SyncBatchNorm(dist::SyncBatchNormOptions{n}); }

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t pad) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(pad).bias(false));
}

/// norm1 -> act -> conv1 (1x1, 4*growth) -> norm2 -> act -> conv2 (3x3, growth) -> dropout.
class DenseLayerImpl : public torch::nn::Module {
 public:
  DenseLayerImpl(int64_t in, int64_t growth, double dropout, const ModelOptions& o)
      : norm1_(register_module("norm1", bn(in))),
        conv1_(register_module("conv1", conv(in, 4 * growth, 1, 0))),
        norm2_(register_module("norm2", bn(4 * growth))),
        conv2_(register_module("conv2", conv(4 * growth, growth, 3, 1))),
        act_(Activation(o.activation)),
        dropout_(dropout) {}

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = conv1_->forward(act_->forward(norm1_->forward(x)));
    y = conv2_->forward(act_->forward(norm2_->forward(y)));
    if (dropout_ > 0) y = at::dropout(y, dropout_, is_training());
    return y;
  }

 private:
  dist::SyncBatchNorm norm1_;
  torch::nn::Conv2d conv1_;
  dist::SyncBatchNorm norm2_;
  torch::nn::Conv2d conv2_;
  Activation act_;
  double dropout_;
};
TORCH_MODULE(DenseLayer);

/// Each layer sees the concatenation of the block input and every earlier layer's output.
class DenseBlockImpl : public torch::nn::Module {
 public:
  DenseBlockImpl(int layers, int64_t in, int64_t growth, double dropout, const ModelOptions& o) {
    for (int i = 0; i < layers; ++i)
      layers_.push_back(register_module("denselayer" + std::to_string(i + 1),
                                        DenseLayer(in + i * growth, growth, dropout, o)));
  }

  at::Tensor forward(const at::Tensor& x) {
    std::vector<at::Tensor> all{x};
    for (auto& layer : layers_) all.push_back(layer->forward(at::cat(all, 1)));
    return at::cat(all, 1);
  }

 private:
  std::vector<DenseLayer> layers_;
};
TORCH_MODULE(DenseBlock);

class DenseNet : public ZooModel {
 public:
  explicit DenseNet(const ModelOptions& o) : act_(Activation(o.activation)) {
    const int64_t growth = 32;
    const std::vector<int> blocks = {6, 12, 24, 16};
    Sequential f;
    f->push_back("conv0", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.inChannels, 64, 7)
                                                .stride(2).padding(3).bias(false)));
    f->push_back("norm0", bn(64));
    f->push_back("relu0", Activation(o.activation));
    f->push_back("pool0",
                 torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2).padding(1)));
    int64_t ch = 64;
    // torchvision's DenseNet drop_rate defaults to 0.
    const double p = dropoutRate(o, 0.0);
    for (size_t i = 0; i < blocks.size(); ++i) {
      const std::string id = std::to_string(i + 1);
      f->push_back("denseblock" + id, DenseBlock(blocks[i], ch, growth, p, o));
      ch += blocks[i] * growth;
      if (i + 1 < blocks.size()) {
        Stack t;
        t->push_back("norm", bn(ch));
        t->push_back("relu", Activation(o.activation));
        t->push_back("conv", conv(ch, ch / 2, 1, 0));
        t->push_back("pool", torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(2).stride(2)));
        f->push_back("transition" + id, t);
        ch /= 2;
      }
    }
    f->push_back("norm5", bn(ch));
    features_ = register_module("features", f);
    if (o.head == "bn_dense") {
      head_ = register_module("classifier", makeBnDenseHead(ch, o, dropoutRate(o, 0.5)));
    } else {
      linear_ = register_module("classifier", torch::nn::Linear(ch, o.numClasses));
      torch::NoGradGuard noGrad;
      linear_->bias.zero_();  // as torchvision
    }
    initConvWeights(*this);
  }

  at::Tensor embed(const at::Tensor& x) override {
    return act_->forward(features_->forward(x)).mean({2, 3});
  }

  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor y = embed(x);
    return linear_.is_empty() ? head_->forward(y) : linear_->forward(y);
  }

 private:
  Sequential features_{nullptr};
  Sequential head_{nullptr};
  torch::nn::Linear linear_{nullptr};
  Activation act_;
};

}  // namespace

std::shared_ptr<Model> buildDenseNet121(const ModelOptions& o) {
  return std::make_shared<DenseNet>(o);
}

}  // namespace slidetrain::zoo
