#include "src/train/Loss.h"

#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>

namespace slidetrain {

namespace F = torch::nn::functional;

void LossOptions::validate(int numClasses) const {
  if (kind != "cross_entropy" && kind != "bce")
    throw ConfigError("train.loss: unknown loss '" + kind + "'");
  if (kind == "bce" && numClasses != 2)
    throw ConfigError("train.loss: bce is binary (one sigmoid output) but the cohort has " +
                      std::to_string(numClasses) + " classes; use cross_entropy");
  if (!classWeights.empty() && static_cast<int>(classWeights.size()) != numClasses)
    throw ConfigError("train.class_weights: " + std::to_string(classWeights.size()) +
                      " weights for " + std::to_string(numClasses) +
                      " classes (one per class, in sorted class-name order)");
  for (double w : classWeights)
    if (!(w >= 0)) throw ConfigError("train.class_weights: weights must be >= 0");
}

double LossOptions::weightOf(int label) const {
  return classWeights.empty() ? 1.0 : classWeights.at(static_cast<size_t>(label));
}

LossOptions lossOptions(const TrainSettings& train) {
  LossOptions o;
  o.kind = train.loss;
  o.classWeights = train.classWeights;
  o.labelSmoothing = train.labelSmoothing;
  return o;
}

int modelOutputs(const LossOptions& loss, int numClasses) {
  return loss.kind == "bce" ? 1 : numClasses;
}

at::Tensor classWeightTensor(const LossOptions& o, const at::Device& device, at::ScalarType dtype) {
  if (o.classWeights.empty()) return {};
  return at::tensor(o.classWeights, at::kDouble).to(dtype).to(device);
}

at::Tensor lossSum(const at::Tensor& logits, const at::Tensor& labels, const LossOptions& o) {
  return lossSum(logits, labels, o, classWeightTensor(o, logits.device(), logits.scalar_type()));
}

at::Tensor lossSum(const at::Tensor& logits, const at::Tensor& labels, const LossOptions& o,
                   const at::Tensor& weights) {
  if (logits.size(0) == 0) return (logits * 0).sum();
  if (weights.defined() != !o.classWeights.empty())
    throw std::invalid_argument("lossSum: class weights given and configured disagree");
  if (o.kind == "bce") {
    at::Tensor y = labels.to(logits.scalar_type());
    // Label smoothing towards 0.5 (the binary analogue of smoothing over k classes).
    if (o.labelSmoothing > 0) y = y * (1 - o.labelSmoothing) + 0.5 * o.labelSmoothing;
    at::Tensor per = F::binary_cross_entropy_with_logits(
        logits.reshape({-1}), y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
    if (weights.defined()) per = per * weights.index_select(0, labels);
    return per.sum();
  }
  // reduction none already multiplies by weight[y] (and weights the smoothing term as torch's
  // mean does), so sum / sum(weight[y]) is exactly torch's weighted mean.
  auto opts = F::CrossEntropyFuncOptions().reduction(torch::kNone).label_smoothing(o.labelSmoothing);
  if (weights.defined()) opts.weight(weights);
  return F::cross_entropy(logits, labels, opts).sum();
}

}  // namespace slidetrain
