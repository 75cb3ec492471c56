// Model registry: name -> builder, option validation, parameter counting and freezing.
#include "src/models/ModelZoo.h"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>
#include <stdexcept>

#include "src/models/Layers.h"

namespace slidetrain {
namespace {

using Builder = std::function<std::shared_ptr<Model>(const ModelOptions&)>;

/// Ordered by family, small to large; modelNames() returns this order.
const std::vector<std::pair<std::string, Builder>>& registry() {
  static const std::vector<std::pair<std::string, Builder>> entries = {
      {"small_cnn", zoo::buildSmallCnn},
      {"cnn_1conv", [](const ModelOptions& o) { return zoo::buildConvNN(o, 1); }},
      {"cnn_2conv", [](const ModelOptions& o) { return zoo::buildConvNN(o, 2); }},
      {"cnn_4conv", zoo::buildCnn4},
      {"lenet5", zoo::buildLeNet5},
      {"alexnet", zoo::buildAlexNet},
      {"vgg11", [](const ModelOptions& o) { return zoo::buildVgg(o, 11, false); }},
      {"vgg11_bn", [](const ModelOptions& o) { return zoo::buildVgg(o, 11, true); }},
      {"vgg16", [](const ModelOptions& o) { return zoo::buildVgg(o, 16, false); }},
      {"vgg16_bn", [](const ModelOptions& o) { return zoo::buildVgg(o, 16, true); }},
      {"vgg19", [](const ModelOptions& o) { return zoo::buildVgg(o, 19, false); }},
      {"vgg19_bn", [](const ModelOptions& o) { return zoo::buildVgg(o, 19, true); }},
      {"resnet18", [](const ModelOptions& o) { return zoo::buildResNet(o, 18); }},
      {"resnet34", [](const ModelOptions& o) { return zoo::buildResNet(o, 34); }},
      {"resnet50", [](const ModelOptions& o) { return zoo::buildResNet(o, 50); }},
      {"densenet121", zoo::buildDenseNet121},
      {"efficientnet_b0", [](const ModelOptions& o) { return zoo::buildEfficientNet(o, 0); }},
      {"efficientnet_b1", [](const ModelOptions& o) { return zoo::buildEfficientNet(o, 1); }},
      {"efficientnet_b2", [](const ModelOptions& o) { return zoo::buildEfficientNet(o, 2); }},
      {"efficientnet_b3", [](const ModelOptions& o) { return zoo::buildEfficientNet(o, 3); }},
      {"googlenet", zoo::buildGoogLeNet},
  };
  return entries;
}

const std::vector<std::pair<std::string, std::string>>& aliases() {
  static const std::vector<std::pair<std::string, std::string>> entries = {
      {"convnn_1", "cnn_1conv"},  // the small-CNN paper's ConvNN_1
      {"convnn_2", "cnn_2conv"},  // its ConvNN_2
      {"cnn4", "cnn_4conv"},      // the optimizer paper's 4-conv CNN
  };
  return entries;
}

std::string joined(const std::vector<std::string>& names) {
  std::ostringstream out;
  for (size_t i = 0; i < names.size(); ++i) out << (i ? ", " : "") << names[i];
  return out.str();
}

}  // namespace

void ModelOptions::validate() const {
  auto fail = [](const std::string& msg) { throw std::invalid_argument(msg); };
  auto names = modelNames();
  const std::string canonical = canonicalModelName(name);
  if (std::find(names.begin(), names.end(), canonical) == names.end())
    fail("model.name: unknown model '" + name + "'; expected one of: " + joined(names) +
         " (or a seed-paper alias: " + joined([] {
           std::vector<std::string> a;
           for (const auto& [alias, target] : aliases()) a.push_back(alias);
           return a;
         }()) + ")");
  if (numClasses < 1)
    fail("model.num_classes: expected a positive integer, got " + std::to_string(numClasses));
  if (inputSize < 8)
    fail("model.input_size: expected at least 8, got " + std::to_string(inputSize));
  if (inChannels < 1)
    fail("model.in_channels: expected a positive integer, got " + std::to_string(inChannels));
  const auto& acts = zoo::activationNames();
  if (std::find(acts.begin(), acts.end(), activation) == acts.end())
    fail("model.activation: unknown activation '" + activation +
         "'; expected one of: " + joined(acts));
  if (bnPosition != "before" && bnPosition != "after")
    fail("model.bn_position: expected 'before' or 'after', got '" + bnPosition + "'");
  // A negative rate means "the architecture's own default" (0.5 for VGG/AlexNet/cnn_4conv, ...).
  if (!(dropout < 1.0))
    fail("model.dropout: expected a rate in [0, 1) (or -1 for the architecture default), got " +
         std::to_string(dropout));
  if (head != "linear" && head != "bn_dense")
    fail("model.head: expected 'linear' or 'bn_dense', got '" + head + "'");
}

std::shared_ptr<Model> buildModel(const ModelOptions& options) {
  options.validate();
  const std::string canonical = canonicalModelName(options.name);
  for (const auto& [name, build] : registry())
    if (name == canonical) return build(options);
  throw std::invalid_argument("model.name: unknown model '" + options.name + "'");
}

ModelOptions modelOptions(const ModelSettings& s, int outputs, int inputSize) {
  ModelOptions m;
  m.name = s.name;
  m.numClasses = outputs;
  m.inputSize = inputSize;
  m.activation = s.activation;
  m.batchNorm = s.batchNorm;
  m.bnPosition = s.bnPosition;
  m.dropout = s.dropout;
  m.head = s.head;
  m.validate();
  return m;
}

std::string canonicalModelName(const std::string& name) {
  for (const auto& [alias, target] : aliases())
    if (alias == name) return target;
  return name;
}

std::vector<std::pair<std::string, std::string>> modelAliases() { return aliases(); }

std::vector<std::string> modelNames() {
  std::vector<std::string> names;
  for (const auto& entry : registry()) names.push_back(entry.first);
  return names;
}

int64_t Model::embeddingDim(int inputSize, int inChannels) {
  torch::NoGradGuard noGrad;
  const bool wasTraining = is_training();
  eval();  // leaves BatchNorm running statistics untouched
  const at::Device device = parameters().empty() ? at::Device(at::kCPU) : parameters()[0].device();
  const int64_t d = embed(at::zeros({1, inChannels, inputSize, inputSize}, device)).size(1);
  train(wasTraining);
  return d;
}

int64_t countParameters(const torch::nn::Module& m, bool trainableOnly) {
  int64_t total = 0;
  for (const auto& p : m.parameters(/*recurse=*/true))
    if (!trainableOnly || p.requires_grad()) total += p.numel();
  return total;
}

int64_t freezeUpTo(Model& model, const std::string& name) {
  if (name.empty()) return 0;
  const std::string prefix = model.resolveLayerName(name);
  auto params = model.named_parameters(/*recurse=*/true);
  // Parameters are registered in forward order, so "before the layer" is "earlier in this list".
  size_t stop = params.size();
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& key = params[i].key();
    if (key == prefix || key.rfind(prefix + ".", 0) == 0) {
      stop = i;
      break;
    }
  }
  if (stop == params.size())
    throw std::invalid_argument("model.freeze_up_to: no layer '" + name +
                                "' in this model; layers are: " + joined(model.layerNames()));
  for (size_t i = 0; i < stop; ++i) params[i].value().set_requires_grad(false);
  return static_cast<int64_t>(stop);
}

}  // namespace slidetrain
