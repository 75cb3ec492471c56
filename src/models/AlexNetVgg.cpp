// AlexNet and VGG-11/16/19 (with and without BatchNorm), laid out exactly like torchvision's
// (features.N / avgpool / classifier.N) so parameter counts and state_dict keys match.
#include <map>

#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>
#include <torch/utils.h>

#include "src/models/Layers.h"

namespace slidetrain::zoo {
namespace {

using torch::nn::Sequential;

/// torchvision's three-layer classifier: Linear-act-Dropout-Linear-act-Dropout-Linear
/// (AlexNet puts each Dropout before its Linear instead).
Sequential fcClassifier(int64_t in, double p, const ModelOptions& o, bool dropoutFirst) {
  Sequential seq;
  if (dropoutFirst) seq->push_back(torch::nn::Dropout(p));
  seq->push_back(torch::nn::Linear(in, 4096));
  seq->push_back(Activation(o.activation));
  seq->push_back(torch::nn::Dropout(p));
  seq->push_back(torch::nn::Linear(4096, 4096));
  seq->push_back(Activation(o.activation));
  if (!dropoutFirst) seq->push_back(torch::nn::Dropout(p));
  seq->push_back(torch::nn::Linear(4096, o.numClasses));
  return seq;
}

/// VGG with Keras layer names (block5_conv1, fc1, fc2, predictions) mapped onto torchvision's
/// indices, so configs written for the Keras transfer-learning papers still freeze correctly.
class Vgg : public FeatureClassifierNet {
 public:
  Vgg(Sequential features, torch::nn::AdaptiveAvgPool2d pool, Sequential classifier,
      std::map<std::string, std::string> kerasNames)
      : FeatureClassifierNet(std::move(features), std::move(pool), std::move(classifier)),
        kerasNames_(std::move(kerasNames)) {}

  std::string resolveLayerName(const std::string& name) const override {
    auto it = kerasNames_.find(name);
    return it == kerasNames_.end() ? name : it->second;
  }

 private:
  std::map<std::string, std::string> kerasNames_;
};

const std::vector<int>& vggConfig(int depth) {
  static const std::vector<int> a = {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
  static const std::vector<int> d = {64,  64,  0,   128, 128, 0,   256, 256, 256,
                                     0,   512, 512, 512, 0,   512, 512, 512, 0};
  static const std::vector<int> e = {64,  64,  0,   128, 128, 0,   256, 256, 256, 256, 0,
                                     512, 512, 512, 512, 0,   512, 512, 512, 512, 0};
  if (depth == 11) return a;
  if (depth == 16) return d;
  return e;
}

}  // namespace

std::shared_ptr<Model> buildVgg(const ModelOptions& o, int depth, bool bn) {
  Sequential features;
  std::map<std::string, std::string> keras;
  int64_t in = o.inChannels;
  int block = 1, conv = 1;
  for (int c : vggConfig(depth)) {
    if (c == 0) {  // 'M' in torchvision's cfgs
      features->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      ++block;
      conv = 1;
      continue;
    }
    keras["block" + std::to_string(block) + "_conv" + std::to_string(conv++)] =
        "features." + std::to_string(features->size());
    addConvBlock(features, in, c, 3, 1, 1, o, bn, /*bias=*/true);  // torchvision keeps bias
    in = c;
  }
  double p = dropoutRate(o, 0.5);
  std::shared_ptr<Vgg> net;
  if (o.head == "bn_dense") {
    net = std::make_shared<Vgg>(features, torch::nn::AdaptiveAvgPool2d(1),
                                makeBnDenseHead(512, o, p), keras);
  } else {
    keras["fc1"] = "classifier.0";
    keras["fc2"] = "classifier.3";
    keras["predictions"] = "classifier.6";
    // Adaptive pooling to 7x7 makes the classifier (and parameter count) input-size independent.
    net = std::make_shared<Vgg>(features, torch::nn::AdaptiveAvgPool2d(7),
                                fcClassifier(512 * 7 * 7, p, o, false), keras);
  }
  initConvWeights(*net);
  torch::NoGradGuard noGrad;
  for (auto& sub : net->modules(false))
    if (auto* fc = sub->as<torch::nn::LinearImpl>()) {
      torch::nn::init::normal_(fc->weight, 0, 0.01);  // torchvision's VGG init
      fc->bias.zero_();
    }
  return net;
}

std::shared_ptr<Model> buildAlexNet(const ModelOptions& o) {
  Sequential f;
  auto conv = [&](int64_t in, int64_t out, int64_t k, int64_t s, int64_t p) {
    f->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(s).padding(p)));
    f->push_back(Activation(o.activation));
  };
  auto pool = [&] { f->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(3).stride(2))); };
  conv(o.inChannels, 64, 11, 4, 2);
  pool();
  conv(64, 192, 5, 1, 2);
  pool();
  conv(192, 384, 3, 1, 1);
  conv(384, 256, 3, 1, 1);
  conv(256, 256, 3, 1, 1);
  pool();
  double p = dropoutRate(o, 0.5);
  if (o.head == "bn_dense")
    return std::make_shared<FeatureClassifierNet>(f, torch::nn::AdaptiveAvgPool2d(1),
                                                  makeBnDenseHead(256, o, p));
  return std::make_shared<FeatureClassifierNet>(f, torch::nn::AdaptiveAvgPool2d(6),
                                                fcClassifier(256 * 6 * 6, p, o, true));
}

}  // namespace slidetrain::zoo
