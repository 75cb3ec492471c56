#pragma once
// Training losses under the project's loss convention (docs/distributed.md): every function here
// returns a SUM over this rank's samples; the trainer multiplies it by
// worldSize / (global normaliser) so that GradSync's averaging yields the gradient of the mean
// over the global batch (or over the accumulation group). The normaliser is the sample count, or
// the sum of the class weights of the samples' labels when train.class_weights is set (PyTorch's
// weighted-mean semantics), and every rank computes it locally from the global epoch order.
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "src/config/Settings.h"

#include "src/models/Outputs.h"

namespace slidetrain {

struct LossOptions {
  std::string kind = "cross_entropy";  ///< cross_entropy (k logits) or bce (one sigmoid logit)
  std::vector<double> classWeights;    ///< per class; empty = all 1
  double labelSmoothing = 0.0;
  /// Throws ConfigError (train.class_weights / train.loss) when inconsistent with numClasses.
  void validate(int numClasses) const;
  /// Weight of a sample of class `label` (1 without class weights).
  double weightOf(int label) const;
};

/// train.loss, train.class_weights, train.label_smoothing.
LossOptions lossOptions(const TrainSettings& train);

/// Outputs of the model's last layer: 1 for bce (binary, one sigmoid logit), else numClasses.
int modelOutputs(const LossOptions& loss, int numClasses);

/// Sum over the batch of the per-sample losses (weighted by class weight). logits [N, k] or
/// [N, 1] for bce; labels int64 [N]. A batch of zero samples gives a zero that still depends on
/// `logits` (so backward reaches every parameter).
at::Tensor lossSum(const at::Tensor& logits, const at::Tensor& labels, const LossOptions& loss);
/// The same with the class weights made beforehand (classWeightTensor on the logits' device and
/// dtype), as the trainer does once instead of a host-to-device copy per micro-batch.
at::Tensor lossSum(const at::Tensor& logits, const at::Tensor& labels, const LossOptions& loss,
                   const at::Tensor& classWeights);
/// train.class_weights as a [k] tensor of `dtype` on `device`; undefined without class weights.
at::Tensor classWeightTensor(const LossOptions& loss, const at::Device& device,
                             at::ScalarType dtype = at::kFloat);

}  // namespace slidetrain
