// GoogLeNet (Inception v1) as torchvision builds it without auxiliary classifiers: BasicConv2d
// (conv without bias -> BN eps 1e-3 -> act) everywhere, inception3a..5b with branch1..4, and
// torchvision's 3x3 (not 5x5) conv in branch3, which its published weights and parameter count
// (6,624,904) depend on. Names match: conv1.conv, inception4a.branch2.1.bn, fc.
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

class BasicConvImpl : public torch::nn::Module {
 public:
  BasicConvImpl(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad,
                const ModelOptions& o)
      : conv_(register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k)
                                                            .stride(stride).padding(pad)
                                                            .bias(false)))),
        act_(Activation(o.activation)) {
    dist::SyncBatchNormOptions bn{out};
    bn.eps = 1e-3;
    bn_ = register_module("bn", dist::SyncBatchNorm(bn));
  }
  at::Tensor forward(const at::Tensor& x) { return act_->forward(bn_->forward(conv_->forward(x))); }

 private:
  torch::nn::Conv2d conv_;
  dist::SyncBatchNorm bn_{nullptr};
  Activation act_;
};
TORCH_MODULE(BasicConv);

torch::nn::MaxPool2d maxPool(int64_t k, int64_t stride, int64_t pad = 0) {
  return torch::nn::MaxPool2d(
      torch::nn::MaxPool2dOptions(k).stride(stride).padding(pad).ceil_mode(true));
}

class InceptionImpl : public torch::nn::Module {
 public:
  InceptionImpl(int64_t in, int64_t c1, int64_t c3r, int64_t c3, int64_t c5r, int64_t c5,
                int64_t pool, const ModelOptions& o) {
    b1_ = register_module("branch1", BasicConv(in, c1, 1, 1, 0, o));
    b2_ = register_module("branch2",
                          Sequential(BasicConv(in, c3r, 1, 1, 0, o), BasicConv(c3r, c3, 3, 1, 1, o)));
    b3_ = register_module("branch3",
                          Sequential(BasicConv(in, c5r, 1, 1, 0, o), BasicConv(c5r, c5, 3, 1, 1, o)));
    b4_ = register_module("branch4", Sequential(maxPool(3, 1, 1), BasicConv(in, pool, 1, 1, 0, o)));
  }
  at::Tensor forward(const at::Tensor& x) {
    return at::cat({b1_->forward(x), b2_->forward(x), b3_->forward(x), b4_->forward(x)}, 1);
  }

 private:
  BasicConv b1_{nullptr};
  Sequential b2_{nullptr}, b3_{nullptr}, b4_{nullptr};
};
TORCH_MODULE(Inception);

class GoogLeNet : public ZooModel {
 public:
  explicit GoogLeNet(const ModelOptions& o) {
    // Registered directly on the model, in forward order, under torchvision's names.
    auto add = [&](const std::string& name, auto module) {
      stem_->push_back(std::string(name), module);
    };
    add("conv1", BasicConv(o.inChannels, 64, 7, 2, 3, o));
    add("maxpool1", maxPool(3, 2));
    add("conv2", BasicConv(64, 64, 1, 1, 0, o));
    add("conv3", BasicConv(64, 192, 3, 1, 1, o));
    add("maxpool2", maxPool(3, 2));
    add("inception3a", Inception(192, 64, 96, 128, 16, 32, 32, o));
    add("inception3b", Inception(256, 128, 128, 192, 32, 96, 64, o));
    add("maxpool3", maxPool(3, 2));
    add("inception4a", Inception(480, 192, 96, 208, 16, 48, 64, o));
    add("inception4b", Inception(512, 160, 112, 224, 24, 64, 64, o));
    add("inception4c", Inception(512, 128, 128, 256, 24, 64, 64, o));
    add("inception4d", Inception(512, 112, 144, 288, 32, 64, 64, o));
    add("inception4e", Inception(528, 256, 160, 320, 32, 128, 128, o));
    add("maxpool4", maxPool(2, 2));
    add("inception5a", Inception(832, 256, 160, 320, 32, 128, 128, o));
    add("inception5b", Inception(832, 384, 192, 384, 48, 128, 128, o));
    // Sequential would add a "stem." prefix; register its children on this module instead.
    for (const auto& child : stem_->named_children()) register_module(child.key(), child.value());
    const double p = dropoutRate(o, 0.2);
    if (o.head == "bn_dense") {
      head_ = register_module("fc", makeBnDenseHead(1024, o, p));
    } else {
      dropout_ = register_module("dropout", torch::nn::Dropout(p));
      fc_ = register_module("fc", torch::nn::Linear(1024, o.numClasses));
    }
    // torchvision: trunc_normal_(std=0.01, a=-2, b=2); bounds of +-2 (absolute) never bind.
    torch::NoGradGuard noGrad;
    for (auto& sub : modules(false)) {
      at::Tensor w;
      if (auto* c = sub->as<torch::nn::Conv2dImpl>()) w = c->weight;
      if (auto* l = sub->as<torch::nn::LinearImpl>()) w = l->weight;
      if (w.defined()) w.normal_(0, 0.01);
    }
  }

  at::Tensor embed(const at::Tensor& x) override { return stem_->forward(x).mean({2, 3}); }

  at::Tensor forward(const at::Tensor& x) override {
    at::Tensor y = embed(x);
    if (!head_.is_empty()) return head_->forward(y);
    return fc_->forward(dropout_->forward(y));
  }

 private:
  Sequential stem_;
  Sequential head_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
  torch::nn::Linear fc_{nullptr};
};

}  // namespace

std::shared_ptr<Model> buildGoogLeNet(const ModelOptions& o) {
  return std::make_shared<GoogLeNet>(o);
}

}  // namespace slidetrain::zoo
