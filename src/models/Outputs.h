#pragma once
// What a classifier's outputs mean: k logits (softmax) or, for a binary model trained with bce,
// one sigmoid logit whose probabilities are [1 - p, p].
#include <ATen/Tensor.h>

namespace slidetrain {

/// Class probabilities [N, k] from logits: softmax, or [1 - p, p] with p = sigmoid(logit) when
/// the model has one output.
at::Tensor logitsToProbabilities(const at::Tensor& logits);
/// Predicted class [N] (int64) from logits (argmax, or logit > 0 for one output).
at::Tensor predictedClass(const at::Tensor& logits);

}  // namespace slidetrain
