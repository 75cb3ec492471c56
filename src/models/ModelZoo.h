#pragma once
// Model zoo: libtorch modules chosen by name. Every BatchNorm is a dist::SyncBatchNorm (plain
// BatchNorm until convertSyncBatchNorm gives it a communicator). Parameter names follow
// torchvision's where the architecture exists there, so state_dicts interoperate.
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>

#include "src/config/Settings.h"

namespace slidetrain {

struct ModelOptions {
  std::string name = "small_cnn";   ///< see modelNames()
  int numClasses = 2;
  int inputSize = 224;              ///< square input side the model is built for
  int inChannels = 3;
  std::string activation = "relu";  ///< relu, leaky_relu, elu, softplus, shifted_relu
  bool batchNorm = true;
  std::string bnPosition = "before";  ///< BatchNorm "before" or "after" the activation
  double dropout = 0.0;
  std::string head = "linear";      ///< "linear" or "bn_dense" (BN -> Dense 256 -> Dropout -> Dense k)
  void validate() const;            ///< throws std::invalid_argument naming the bad field
};

/// A classifier: images [N, C, H, W] float -> logits [N, numClasses] (or [N, 1] for binary).
class Model : public torch::nn::Module {
 public:
  virtual at::Tensor forward(const at::Tensor& x) = 0;
  /// The model with its classifier removed: the convolutional trunk's output, global-average
  /// pooled, [N, D] (torchvision's `fc = Identity()` for ResNet; features + pooling for VGG,
  /// AlexNet, the small CNNs, EfficientNet). `slidetrain features` embeds patches with it.
  virtual at::Tensor embed(const at::Tensor& x) = 0;
  /// D of embed().
  int64_t embeddingDim(int inputSize, int inChannels = 3);
  /// Names of the layer groups in forward order (for freezing "up to" a layer).
  virtual std::vector<std::string> layerNames() const { return {}; }
  /// Maps a user-facing layer name (e.g. Keras' VGG "block5_conv1") to the dotted prefix of
  /// its parameters ("features.28"); names that are already prefixes pass through.
  virtual std::string resolveLayerName(const std::string& name) const { return name; }
};

std::shared_ptr<Model> buildModel(const ModelOptions& options);
std::vector<std::string> modelNames();
/// The seed papers' names kept as aliases (convnn_1 -> cnn_1conv, ...; docs/models.md), as
/// (alias, model name) pairs; canonicalModelName maps an alias to its model (any other name to
/// itself).
std::vector<std::pair<std::string, std::string>> modelAliases();
std::string canonicalModelName(const std::string& name);

/// model.* with the number of outputs (models/Outputs.h) and the input side (tiling.patch_size);
/// validated.
ModelOptions modelOptions(const ModelSettings& model, int outputs, int inputSize);
int64_t countParameters(const torch::nn::Module& m, bool trainableOnly = false);

/// Sets requires_grad=false on every parameter registered before the layer `name` (a dotted
/// torchvision prefix such as "layer3" / "features.28", or a name resolveLayerName knows). The
/// named layer and everything after it stay trainable; "" freezes nothing. Returns the number
/// of parameter tensors frozen; throws std::invalid_argument (model.freeze_up_to) for an
/// unknown name.
int64_t freezeUpTo(Model& model, const std::string& name);

}  // namespace slidetrain
