// Losses under the sum convention: sum / normaliser equals PyTorch's (weighted, smoothed) mean.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>

#include "src/train/Loss.h"

namespace slidetrain {
namespace {

namespace F = torch::nn::functional;

TEST(Loss, WeightedSmoothedCrossEntropyMatchesTorchMean) {
  at::manual_seed(1);
  const at::Tensor logits = at::randn({9, 3}, at::kDouble);
  const at::Tensor y = at::tensor({0, 1, 2, 2, 1, 0, 0, 2, 1}, at::kLong);
  LossOptions o;
  o.classWeights = {0.5, 2.0, 1.5};
  o.labelSmoothing = 0.1;
  double norm = 0;
  for (int64_t i = 0; i < 9; ++i) norm += o.weightOf(static_cast<int>(y[i].item<int64_t>()));
  const double ours = lossSum(logits, y, o).item<double>() / norm;
  const double ref = F::cross_entropy(logits, y, F::CrossEntropyFuncOptions()
                                                     .weight(at::tensor(o.classWeights, at::kDouble))
                                                     .label_smoothing(0.1))
                         .item<double>();
  EXPECT_NEAR(ours, ref, 1e-12);
  LossOptions plain;
  EXPECT_NEAR(lossSum(logits, y, plain).item<double>() / 9,
              F::cross_entropy(logits, y).item<double>(), 1e-12);
}

TEST(Loss, BceOneOutput) {
  LossOptions o;
  o.kind = "bce";
  EXPECT_EQ(modelOutputs(o, 2), 1);
  EXPECT_THROW(o.validate(3), ConfigError);
  const at::Tensor logits = at::tensor({2.0, -1.0}, at::kDouble).reshape({2, 1});
  const at::Tensor y = at::tensor({1, 0}, at::kLong);
  const double expect = std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-1.0));
  EXPECT_NEAR(lossSum(logits, y, o).item<double>(), expect, 1e-12);
  const at::Tensor p = logitsToProbabilities(logits);
  EXPECT_NEAR(p[0][1].item<double>(), 1 / (1 + std::exp(-2.0)), 1e-12);
  EXPECT_NEAR(p[1][0].item<double>(), 1 - 1 / (1 + std::exp(1.0)), 1e-12);
  EXPECT_EQ(predictedClass(logits)[0].item<int64_t>(), 1);
  EXPECT_EQ(predictedClass(logits)[1].item<int64_t>(), 0);
  LossOptions bad;
  bad.classWeights = {1.0};
  EXPECT_THROW(bad.validate(2), ConfigError);
}

}  // namespace
}  // namespace slidetrain
