#pragma once
// Building blocks shared by the model zoo's .cpp files (internal to slidetrain_core): the
// configurable activation, conv/BN/activation blocks honouring ModelOptions, the two heads, a
// generic features -> pool -> classifier net, and the per-architecture builder functions.
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/pooling.h>

#include "src/models/ModelZoo.h"

namespace slidetrain::zoo {

/// Element-wise activation chosen by name (relu, leaky_relu, elu, softplus, shifted_relu, silu).
/// A module rather than a function so it can sit in a Sequential at torchvision's index.
class ActivationImpl : public torch::nn::Module {
 public:
  explicit ActivationImpl(const std::string& kind);
  at::Tensor forward(const at::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

 private:
  enum class Kind { Relu, LeakyRelu, Elu, Softplus, ShiftedRelu, Silu } kind_;
};
TORCH_MODULE(Activation);

/// A Sequential with a concrete forward(Tensor), so it can be nested inside another
/// Sequential (libtorch's AnyModule rejects Sequential's templated forward). Keys stay "0", "1"...
class StackImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  at::Tensor forward(const at::Tensor& x) { return SequentialImpl::forward(x); }
};
TORCH_MODULE(Stack);

/// Names accepted by ActivationImpl from users (silu is EfficientNet-internal).
const std::vector<std::string>& activationNames();

/// Dropout rate: options.dropout, or the architecture's default when options.dropout < 0.
double dropoutRate(const ModelOptions& o, double archDefault);

/// Appends conv -> [BN] -> act (bnPosition "before") or conv -> act -> [BN] ("after").
/// Returns the number of modules appended.
int addConvBlock(torch::nn::Sequential& seq, int64_t in, int64_t out, int64_t kernel,
                 int64_t stride, int64_t padding, const ModelOptions& o, bool bn, bool bias);

/// The transfer-learning paper's head: BN -> Dense 256 -> act -> Dropout -> Dense k.
torch::nn::Sequential makeBnDenseHead(int64_t inFeatures, const ModelOptions& o, double dropout);

/// Base of every zoo model: layerNames() lists the parameterised modules in registration
/// (= forward) order, derived from the parameter names so it never drifts from the code.
class ZooModel : public Model {
 public:
  std::vector<std::string> layerNames() const override;
};

/// features -> [avgpool] -> flatten -> classifier. Registered as "features", "avgpool",
/// "classifier" like torchvision's VGG/AlexNet so state_dict keys match.
class FeatureClassifierNet : public ZooModel {
 public:
  FeatureClassifierNet(torch::nn::Sequential features, torch::nn::AdaptiveAvgPool2d avgpool,
                       torch::nn::Sequential classifier);
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor embed(const at::Tensor& x) override;

 protected:
  torch::nn::Sequential features_;
  torch::nn::AdaptiveAvgPool2d avgpool_{nullptr};
  torch::nn::Sequential classifier_;
};

/// Flattened size of `features` applied to a [1, C, S, S] input (eval mode, no grad), for
/// nets that flatten straight into a dense layer. Throws naming model.input_size when too small.
int64_t flattenedSize(torch::nn::Sequential& features, const ModelOptions& o);

/// torchvision-style init: Kaiming-normal (fan_out) convs with zero bias; BN weight 1, bias 0.
void initConvWeights(torch::nn::Module& m);

// Builders, one family per .cpp file.
std::shared_ptr<Model> buildSmallCnn(const ModelOptions& o);
std::shared_ptr<Model> buildConvNN(const ModelOptions& o, int variant);
std::shared_ptr<Model> buildCnn4(const ModelOptions& o);
std::shared_ptr<Model> buildLeNet5(const ModelOptions& o);
std::shared_ptr<Model> buildAlexNet(const ModelOptions& o);
std::shared_ptr<Model> buildVgg(const ModelOptions& o, int depth, bool bn);
std::shared_ptr<Model> buildResNet(const ModelOptions& o, int depth);
std::shared_ptr<Model> buildDenseNet121(const ModelOptions& o);
std::shared_ptr<Model> buildEfficientNet(const ModelOptions& o, int variant);
std::shared_ptr<Model> buildGoogLeNet(const ModelOptions& o);

}  // namespace slidetrain::zoo
