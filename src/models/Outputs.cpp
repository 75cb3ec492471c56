#include "src/models/Outputs.h"

#include <ATen/ATen.h>

namespace slidetrain {

at::Tensor logitsToProbabilities(const at::Tensor& logits) {
  if (logits.size(1) == 1) {
    at::Tensor p = at::sigmoid(logits);
    return at::cat({1 - p, p}, 1);
  }
  return at::softmax(logits, 1);
}

at::Tensor predictedClass(const at::Tensor& logits) {
  if (logits.size(1) == 1) return logits.reshape({-1}).gt(0).to(at::kLong);
  return logits.argmax(1);
}

}  // namespace slidetrain
