// Shared zoo building blocks; see ZooLayers.h.
#include "src/models/Layers.h"

#include <ostream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include "distributed/SyncBatchNorm.h"

namespace slidetrain::zoo {

ActivationImpl::ActivationImpl(const std::string& kind) {
  if (kind == "relu") kind_ = Kind::Relu;
  else if (kind == "leaky_relu") kind_ = Kind::LeakyRelu;
  else if (kind == "elu") kind_ = Kind::Elu;
  else if (kind == "softplus") kind_ = Kind::Softplus;
  else if (kind == "shifted_relu") kind_ = Kind::ShiftedRelu;
  else if (kind == "silu") kind_ = Kind::Silu;
  else throw std::invalid_argument("model.activation: unknown activation '" + kind + "'");
}

at::Tensor ActivationImpl::forward(const at::Tensor& x) {
  switch (kind_) {
    case Kind::Relu: return at::relu(x);
    case Kind::LeakyRelu: return at::leaky_relu(x, 0.01);  // PyTorch's default slope
    case Kind::Elu: return at::elu(x);
    case Kind::Softplus: return at::softplus(x);
    // Shifted ReLU as in Clevert et al. (ELU paper): max(-1, x), so the mean activation can
    // go below zero like ELU's while keeping ReLU's piecewise-linear cost.
    case Kind::ShiftedRelu: return at::clamp_min(x, -1.0);
    case Kind::Silu: return at::silu(x);
  }
  return x;
}

void ActivationImpl::pretty_print(std::ostream& stream) const {
  static const char* names[] = {"ReLU", "LeakyReLU", "ELU", "Softplus", "ShiftedReLU", "SiLU"};
  stream << "slidetrain::Activation(" << names[static_cast<int>(kind_)] << ")";
}

const std::vector<std::string>& activationNames() {
  static const std::vector<std::string> names = {"relu", "leaky_relu", "elu", "softplus",
                                                 "shifted_relu"};
  return names;
}

double dropoutRate(const ModelOptions& o, double archDefault) {
  return o.dropout < 0 ? archDefault : o.dropout;
}

int addConvBlock(torch::nn::Sequential& seq, int64_t in, int64_t out, int64_t kernel,
                 int64_t stride, int64_t padding, const ModelOptions& o, bool bn, bool bias) {
  seq->push_back(torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias)));
  if (!bn) {
    seq->push_back(Activation(o.activation));
    return 2;
  }
  auto norm = dist::SyncBatchNorm(dist::SyncBatchNormOptions{out});
  if (o.bnPosition == "after") {
    seq->push_back(Activation(o.activation));
    seq->push_back(norm);
  } else {
    seq->push_back(norm);
    seq->push_back(Activation(o.activation));
  }
  return 3;
}

torch::nn::Sequential makeBnDenseHead(int64_t inFeatures, const ModelOptions& o,
                                      double dropout) {
  torch::nn::Sequential head;
  head->push_back(dist::SyncBatchNorm(dist::SyncBatchNormOptions{inFeatures}));
  head->push_back(torch::nn::Linear(inFeatures, 256));
  head->push_back(Activation(o.activation));
  head->push_back(torch::nn::Dropout(dropout));
  head->push_back(torch::nn::Linear(256, o.numClasses));
  return head;
}

std::vector<std::string> ZooModel::layerNames() const {
  std::vector<std::string> names;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& key = item.key();
    auto dot = key.rfind('.');
    std::string layer = dot == std::string::npos ? key : key.substr(0, dot);
    if (names.empty() || names.back() != layer) names.push_back(layer);
  }
  return names;
}

FeatureClassifierNet::FeatureClassifierNet(torch::nn::Sequential features,
                                           torch::nn::AdaptiveAvgPool2d avgpool,
                                           torch::nn::Sequential classifier) {
  features_ = register_module("features", std::move(features));
  if (!avgpool.is_empty()) avgpool_ = register_module("avgpool", std::move(avgpool));
  classifier_ = register_module("classifier", std::move(classifier));
}

at::Tensor FeatureClassifierNet::forward(const at::Tensor& x) {
  at::Tensor y = features_->forward(x);
  if (!avgpool_.is_empty()) y = avgpool_->forward(y);
  return classifier_->forward(y.flatten(1));
}

at::Tensor FeatureClassifierNet::embed(const at::Tensor& x) {
  return features_->forward(x).mean({2, 3});
}

int64_t flattenedSize(torch::nn::Sequential& features, const ModelOptions& o) {
  torch::NoGradGuard noGrad;
  // Eval mode so the dry run leaves BatchNorm running statistics untouched.
  features->eval();
  at::Tensor y;
  try {
    y = features->forward(at::zeros({1, o.inChannels, o.inputSize, o.inputSize}));
  } catch (const std::exception& e) {
    features->train();
    throw std::invalid_argument("model.input_size: " + std::to_string(o.inputSize) +
                                " is too small for model '" + o.name + "' (" + e.what() + ")");
  }
  features->train();
  return y.numel();
}

void initConvWeights(torch::nn::Module& m) {
  torch::NoGradGuard noGrad;
  for (auto& sub : m.modules(/*include_self=*/false)) {
    if (auto* conv = sub->as<torch::nn::Conv2dImpl>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0, torch::kFanOut, torch::kReLU);
      if (conv->bias.defined()) conv->bias.zero_();
    }
  }
}

}  // namespace slidetrain::zoo
