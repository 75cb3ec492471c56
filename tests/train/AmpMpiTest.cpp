// The fp16 loss scaler under mpirun (2 and 3 ranks): an inf or NaN in one rank's gradients makes
// every rank skip the step (the flag is all-reduced on the device plane), the scale halves and
// no weight moves; clean steps update every rank alike and grow the scale after the interval.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/sgd.h>

#include "distributed/GradSync.h"
#include "distributed/MpiComm.h"
#include "distributed/StrictComm.h"
#include "src/train/Amp.h"

namespace slidetrain {
namespace {

std::shared_ptr<dist::Comm> world() {
  static auto c = dist::makeComm("mpi", dist::CommOptions{std::chrono::seconds(120)});
  return c;
}

struct ScaledStep {
  torch::nn::Linear model{torch::nn::LinearOptions(4, 3)};
  dist::Planes planes;
  std::unique_ptr<dist::GradSync> sync;
  std::unique_ptr<torch::optim::SGD> opt;
  std::unique_ptr<LossScaler> scaler;
  std::vector<at::Tensor> params;

  explicit ScaledStep(int64_t growthInterval) {
    // The strict device plane: the scaler's flag must be declared device data.
    planes = dist::Planes(world(), std::make_shared<dist::StrictComm>(world(), c10::kCPU), c10::kCPU);
    sync = std::make_unique<dist::GradSync>(planes, *model);
    for (auto& p : model->parameters()) params.push_back(p);
    opt = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(0.1));
    LossScalerOptions o;
    o.initScale = 1024;
    o.growthInterval = growthInterval;
    scaler = std::make_unique<LossScaler>(o, planes.device, c10::kCPU);
  }

  /// One optimizer step on this rank's data; `poison` puts an inf into this rank's gradient
  /// after the all-reduce (as an fp16 overflow in a rank-local computation would). Returns
  /// whether the step was taken.
  bool step(bool poison) {
    opt->zero_grad();
    const at::Tensor x = at::full({2, 4}, 0.5 + world()->rank());
    (model->forward(x).sum() * scaler->scale()).backward();
    sync->finalize();
    if (poison) {
      c10::NoGradGuard ng;
      model->weight.mutable_grad()[0][0] = std::numeric_limits<float>::infinity();
    }
    const bool finite = scaler->unscale(params);
    if (finite) opt->step();
    scaler->update(finite);
    return finite;
  }
};

at::Tensor flatWeights(torch::nn::Module& m) {
  std::vector<at::Tensor> v;
  for (auto& p : m.parameters()) v.push_back(p.detach().flatten().clone());
  return at::cat(v);
}

TEST(LossScalerMpi, InfOnOneRankSkipsTheStepOnEveryRank) {
  const int n = world()->size(), r = world()->rank();
  ASSERT_GE(n, 2) << "run under mpirun -np 2 or more";
  ScaledStep s(/*growthInterval=*/100);
  const at::Tensor before = flatWeights(*s.model);
  // Only the last rank sees the inf; every rank must skip.
  EXPECT_FALSE(s.step(/*poison=*/r == n - 1));
  EXPECT_TRUE(at::equal(flatWeights(*s.model), before)) << "weights moved on rank " << r;
  EXPECT_EQ(s.scaler->scale(), 512.0);
  EXPECT_EQ(s.scaler->cleanSteps(), 0);

  // A clean step moves the weights, identically on every rank, and the gradients were unscaled:
  // SGD moved them by lr x the true mean gradient, not 512 x it.
  EXPECT_TRUE(s.step(false));
  const at::Tensor after = flatWeights(*s.model);
  EXPECT_FALSE(at::equal(after, before));
  at::Tensor all = world()->allGather(after);
  for (int k = 1; k < n; ++k) EXPECT_TRUE(at::equal(all[k], all[0]));
  // d(sum of outputs)/d(bias) = batch size 2 on every rank: the bias moved by exactly -0.1 * 2.
  const at::Tensor biasStep = s.model->bias.detach() - before.narrow(0, 12, 3);
  EXPECT_TRUE(at::allclose(biasStep, at::full({3}, -0.2f), 1e-6, 1e-6)) << biasStep;
}

TEST(LossScalerMpi, NanAlsoSkipsAndCleanStepsGrowTheScale) {
  ScaledStep s(/*growthInterval=*/2);
  EXPECT_TRUE(s.step(false));
  EXPECT_EQ(s.scaler->scale(), 1024.0);
  EXPECT_TRUE(s.step(false));
  EXPECT_EQ(s.scaler->scale(), 2048.0);  // grew after 2 clean steps
  EXPECT_EQ(s.scaler->cleanSteps(), 0);
  // A NaN on rank 0 only.
  s.opt->zero_grad();
  (s.model->forward(at::ones({1, 4})).sum() * s.scaler->scale()).backward();
  s.sync->finalize();
  if (world()->rank() == 0) {
    c10::NoGradGuard ng;
    s.model->bias.mutable_grad()[1] = std::numeric_limits<float>::quiet_NaN();
  }
  EXPECT_FALSE(s.scaler->unscale(s.params));
  s.scaler->update(false);
  EXPECT_EQ(s.scaler->scale(), 1024.0);
}

}  // namespace
}  // namespace slidetrain
