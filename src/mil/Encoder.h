#pragma once
// Patch encoders for `slidetrain features`: a zoo model with its classifier removed
// (Model::embed, weights from model.pretrained) or a TorchScript module given by path (how
// published pathology encoders such as UNI, CONCH or Virchow are brought: docs/mil.md).
#include <memory>
#include <string>

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include "src/config/Settings.h"

namespace slidetrain::mil {

class Encoder {
 public:
  virtual ~Encoder() = default;
  /// Normalised images [N, 3, S, S] on device() (S = inputSize()) -> float32 features [N, D].
  virtual at::Tensor encode(const at::Tensor& images) = 0;
  /// Recorded in each feature file (the `encoder` attribute) and in its fingerprint.
  virtual std::string name() const = 0;
  /// What identifies the weights (file, size and modification time; or "random init").
  virtual std::string weightsId() const = 0;
  int64_t dim() const { return dim_; }
  int inputSize() const { return inputSize_; }
  c10::Device device() const { return device_; }

 protected:
  int64_t dim_ = 0;
  int inputSize_ = 0;
  c10::Device device_{c10::kCPU};
};

/// features.encoder: "model" -> the zoo model of model.* (classifier removed, model.pretrained
/// loaded when set: `verbose` reports the keys it matched); a path -> the TorchScript module in
/// that file. `inputSize` is the side the encoder is fed (features.input_size, or the patch
/// size). Checks the module accepts [1, 3, inputSize, inputSize] and returns [1, D]; throws
/// ConfigError naming features.encoder and the file otherwise.
std::unique_ptr<Encoder> makeEncoder(const FeaturesSettings& features, const ModelSettings& model,
                                     int inputSize, c10::Device device, bool verbose);

}  // namespace slidetrain::mil
