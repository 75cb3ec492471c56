// Optimizers and LR schedules: closed-form schedule values, every optimizer minimises a
// quadratic, weight decay is coupled (L2) for SGD/Adam and decoupled for AdamW, and the foreach
// steps (ForeachOptimizers.h) against libtorch's own optimizers, PyTorch's port of torch.optim.
#include <cmath>
#include <functional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <ATen/ATen.h>

#include <torch/optim/sgd.h>
#include <torch/serialize/archive.h>
#include <torch/utils.h>

#include "src/train/ForeachOptimizers.h"
#include "src/train/Optim.h"
#include "src/config/Settings.h"

namespace slidetrain {
namespace {

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(LrSchedule, ConstantStepMultistepCosine) {
  ScheduleOptions s;
  EXPECT_DOUBLE_EQ(LrSchedule(s, 0.1, 100).lrAt(0), 0.1);
  EXPECT_DOUBLE_EQ(LrSchedule(s, 0.1, 100).lrAt(99), 0.1);

  s.name = "step";  // default milestone: half of training
  LrSchedule step(s, 0.1, 100);
  EXPECT_DOUBLE_EQ(step.lrAt(49), 0.1);
  EXPECT_NEAR(step.lrAt(50), 0.01, 1e-15);
  EXPECT_NEAR(step.lrAt(99), 0.01, 1e-15);

  s.name = "multistep";
  s.gamma = 0.5;
  s.milestones = {0.5, 0.75};
  LrSchedule multi(s, 0.1, 100);
  EXPECT_DOUBLE_EQ(multi.lrAt(74), 0.05);
  EXPECT_DOUBLE_EQ(multi.lrAt(75), 0.025);

  ScheduleOptions c;
  c.name = "cosine";
  LrSchedule cosine(c, 0.1, 100);
  EXPECT_DOUBLE_EQ(cosine.lrAt(0), 0.1);
  EXPECT_NEAR(cosine.lrAt(50), 0.05, 1e-12);
  EXPECT_NEAR(cosine.lrAt(100), 0.0, 1e-12);
  EXPECT_NEAR(cosine.lrAt(500), 0.0, 1e-12);  // clamped past the end
  c.minLr = 0.01;
  EXPECT_NEAR(LrSchedule(c, 0.1, 100).lrAt(50), 0.055, 1e-12);
}

TEST(LrSchedule, LinearWarmupThenSchedule) {
  ScheduleOptions s;
  s.name = "cosine";
  s.warmupSteps = 10;
  LrSchedule w(s, 0.2, 110);
  EXPECT_NEAR(w.lrAt(0), 0.02, 1e-12);  // never 0, so the first step moves the weights
  EXPECT_NEAR(w.lrAt(4), 0.1, 1e-12);
  EXPECT_NEAR(w.lrAt(9), 0.2, 1e-12);
  EXPECT_NEAR(w.lrAt(10), 0.2, 1e-12);
  EXPECT_NEAR(w.lrAt(60), 0.1, 1e-12);  // cosine over the 100 post-warmup steps
}

TEST(LrSchedule, ApplySetsEveryGroup) {
  at::Tensor w = at::zeros({3}).requires_grad_();
  OptimizerOptions o;
  o.name = "momentum";
  o.lr = 0.5;
  auto opt = makeOptimizer(o, {w});
  ScheduleOptions s;
  s.name = "step";
  LrSchedule(s, 0.5, 10).apply(*opt, 7);
  for (auto& g : opt->param_groups()) EXPECT_DOUBLE_EQ(g.options().get_lr(), 0.05);
}

TEST(LrSchedule, ValidateNamesTheField) {
  ScheduleOptions s;
  s.name = "exp";
  EXPECT_NE(errorOf([&] { s.validate(); }).find("schedule.name"), std::string::npos);
  s = ScheduleOptions{};
  s.gamma = 0;
  EXPECT_NE(errorOf([&] { s.validate(); }).find("schedule.gamma"), std::string::npos);
  s = ScheduleOptions{};
  s.name = "multistep";
  EXPECT_NE(errorOf([&] { s.validate(); }).find("schedule.milestones"), std::string::npos);
  s.milestones = {0.7, 0.3};
  EXPECT_NE(errorOf([&] { s.validate(); }).find("schedule.milestones"), std::string::npos);
  s.milestones = {0.3, 1.5};
  EXPECT_NE(errorOf([&] { s.validate(); }).find("schedule.milestones"), std::string::npos);
  s = ScheduleOptions{};
  s.warmupSteps = -1;
  EXPECT_NE(errorOf([&] { s.validate(); }).find("schedule.warmup_steps"), std::string::npos);
  s = ScheduleOptions{};
  s.minLr = -1;
  EXPECT_NE(errorOf([&] { s.validate(); }).find("schedule.min_lr"), std::string::npos);
}

TEST(Optimizers, ValidateNamesTheField) {
  OptimizerOptions o;
  EXPECT_EQ(errorOf([&] { o.validate(); }), "");
  o.name = "lbfgs";
  EXPECT_NE(errorOf([&] { o.validate(); }).find("optimizer.name"), std::string::npos);
  o = OptimizerOptions{};
  o.lr = 0;
  EXPECT_NE(errorOf([&] { o.validate(); }).find("optimizer.lr"), std::string::npos);
  o = OptimizerOptions{};
  o.momentum = 1.0;
  EXPECT_NE(errorOf([&] { o.validate(); }).find("optimizer.momentum"), std::string::npos);
  o = OptimizerOptions{};
  o.weightDecay = -0.1;
  EXPECT_NE(errorOf([&] { o.validate(); }).find("optimizer.weight_decay"), std::string::npos);
  o = OptimizerOptions{};
  o.beta2 = 1.0;
  EXPECT_NE(errorOf([&] { o.validate(); }).find("optimizer.beta2"), std::string::npos);
  o = OptimizerOptions{};
  o.eps = 0;
  EXPECT_NE(errorOf([&] { o.validate(); }).find("optimizer.eps"), std::string::npos);
}

class EachOptimizer : public ::testing::TestWithParam<std::string> {};

TEST_P(EachOptimizer, MinimisesAQuadratic) {
  OptimizerOptions o;
  o.name = GetParam();
  o.lr = 0.05;
  const at::Tensor target = at::tensor({1.0f, -2.0f, 3.0f});
  at::Tensor w = at::zeros({3}).requires_grad_();
  auto opt = makeOptimizer(o, {w});
  auto loss = [&] { return (w - target).pow(2).sum(); };
  const double initial = loss().item<double>();
  for (int i = 0; i < 200; ++i) {
    opt->zero_grad();
    loss().backward();
    opt->step();
  }
  EXPECT_LT(loss().item<double>(), 0.5 * initial) << o.name;
}

INSTANTIATE_TEST_SUITE_P(All, EachOptimizer,
                         ::testing::Values("gd", "sgd", "momentum", "nesterov", "adagrad",
                                           "rmsprop", "adam", "adamw"));

/// One step with a zero loss gradient, so only weight decay moves w (from 1.0).
double afterDecayStep(const std::string& name) {
  OptimizerOptions o;
  o.name = name;
  o.lr = 0.1;
  o.weightDecay = 0.1;
  at::Tensor w = at::ones({1}).requires_grad_();
  auto opt = makeOptimizer(o, {w});
  (w * 0).sum().backward();
  opt->step();
  return w.item<double>();
}

/// Five steps of `Ours` and of libtorch's `Theirs` from the same weights with the same gradients:
/// three parameters of different shapes, the second without a gradient on step 3 (torch.optim
/// skips it, its state stays behind). Returns the largest weight difference; also checks that
/// the optimizer state went through save/load unchanged (the checkpoint path).
template <typename Ours, typename Theirs, typename Options>
double foreachVsLibtorch(const Options& options) {
  at::manual_seed(3);
  const std::vector<at::Tensor> init = {at::randn({4, 3}), at::randn({5}), at::randn({2, 2, 3})};
  std::vector<at::Tensor> a, b;
  for (const auto& t : init) {
    a.push_back(t.clone().requires_grad_());
    b.push_back(t.clone().requires_grad_());
  }
  Ours ours(a, options);
  Theirs theirs(b, options);
  for (int step = 0; step < 5; ++step) {
    ours.zero_grad();
    theirs.zero_grad();
    for (size_t i = 0; i < a.size(); ++i) {
      if (step == 2 && i == 1) continue;  // no gradient this step
      const at::Tensor g = at::randn(init[i].sizes());
      a[i].mutable_grad() = g.clone();
      b[i].mutable_grad() = g.clone();
    }
    ours.step();
    theirs.step();
  }
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  // The state is libtorch's: after a save/load round trip onto copies of the weights, the next
  // step is the same as the original optimizer's.
  std::stringstream buffer;
  torch::serialize::OutputArchive out;
  ours.save(out);
  out.save_to(buffer);
  std::vector<at::Tensor> c;
  for (const auto& t : a) c.push_back(t.detach().clone().requires_grad_());
  Ours reloaded(c, options);
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  reloaded.load(in);
  for (size_t i = 0; i < a.size(); ++i) {
    const at::Tensor g = at::randn(init[i].sizes());
    a[i].mutable_grad() = g.clone();
    c[i].mutable_grad() = g.clone();
  }
  ours.step();
  reloaded.step();
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - c[i]).abs().max().item<double>());
  return worst;
}

TEST(Optimizers, ForeachStepsAreLibtorchs) {
  namespace o = torch::optim;
  EXPECT_LT((foreachVsLibtorch<ForeachSGD, o::SGD>(o::SGDOptions(0.1))), 1e-6);
  EXPECT_LT((foreachVsLibtorch<ForeachSGD, o::SGD>(o::SGDOptions(0.1).momentum(0.9).weight_decay(0.01))), 1e-6);
  EXPECT_LT((foreachVsLibtorch<ForeachSGD, o::SGD>(o::SGDOptions(0.1).momentum(0.8).nesterov(true))), 1e-6);
  EXPECT_LT((foreachVsLibtorch<ForeachAdam, o::Adam>(o::AdamOptions(0.01).weight_decay(0.01))), 1e-6);
  EXPECT_LT((foreachVsLibtorch<ForeachAdamW, o::AdamW>(o::AdamWOptions(0.01).weight_decay(0.1))), 1e-6);
  EXPECT_LT((foreachVsLibtorch<ForeachRMSprop, o::RMSprop>(o::RMSpropOptions(0.01).weight_decay(0.01))), 1e-6);
  EXPECT_LT((foreachVsLibtorch<ForeachRMSprop, o::RMSprop>(o::RMSpropOptions(0.01).momentum(0.5))), 1e-6);
  EXPECT_LT((foreachVsLibtorch<ForeachAdagrad, o::Adagrad>(o::AdagradOptions(0.1).weight_decay(0.01).lr_decay(0.1))), 1e-6);
}

TEST(Optimizers, WeightDecayCoupledOrDecoupled) {
  EXPECT_NEAR(afterDecayStep("sgd"), 0.99, 1e-6);    // w -= lr * wd * w
  EXPECT_NEAR(afterDecayStep("adamw"), 0.99, 1e-6);  // decoupled: w *= 1 - lr * wd
  // Adam folds wd*w into the gradient, which its normalisation turns into a full lr step.
  EXPECT_NEAR(afterDecayStep("adam"), 0.9, 1e-4);
  OptimizerOptions none;
  none.name = "sgd";
  none.lr = 0.1;
  at::Tensor w = at::ones({1}).requires_grad_();
  auto opt = makeOptimizer(none, {w});
  (w * 0).sum().backward();
  opt->step();
  EXPECT_DOUBLE_EQ(w.item<double>(), 1.0);
}

}  // namespace
}  // namespace slidetrain

namespace slidetrain {
namespace {

torch::optim::SGDOptions& sgdOptions(torch::optim::Optimizer& opt) {
  return static_cast<torch::optim::SGDOptions&>(opt.param_groups()[0].options());
}

OptimizerOptions fromOverrides(const std::vector<std::string>& overrides) {
  return optimizerOptions(Settings::defaults(overrides).optimizer);
}

TEST(Optimizers, SgdUsesMomentumAndNesterovAsTorchOptim) {
  // configs/demo.yaml says name sgd with momentum 0.9: torch.optim.SGD would use it, so must we.
  at::Tensor w = at::zeros({3}).requires_grad_();
  auto sgd = makeOptimizer(fromOverrides({"optimizer.name=sgd", "optimizer.momentum=0.9"}), {w});
  EXPECT_DOUBLE_EQ(sgdOptions(*sgd).momentum(), 0.9);
  EXPECT_FALSE(sgdOptions(*sgd).nesterov());
  auto nest = makeOptimizer(fromOverrides({"optimizer.name=sgd", "optimizer.momentum=0.8",
                                           "optimizer.nesterov=true"}), {w});
  EXPECT_DOUBLE_EQ(sgdOptions(*nest).momentum(), 0.8);
  EXPECT_TRUE(sgdOptions(*nest).nesterov());
  // torch's default: no momentum unless given.
  EXPECT_DOUBLE_EQ(sgdOptions(*makeOptimizer(fromOverrides({"optimizer.name=sgd"}), {w})).momentum(), 0.0);
  // The seed study's names keep their meaning: momentum/nesterov default to 0.9, gd is plain.
  EXPECT_DOUBLE_EQ(sgdOptions(*makeOptimizer(fromOverrides({"optimizer.name=momentum"}), {w})).momentum(), 0.9);
  auto n = makeOptimizer(fromOverrides({"optimizer.name=nesterov"}), {w});
  EXPECT_TRUE(sgdOptions(*n).nesterov());
  EXPECT_DOUBLE_EQ(sgdOptions(*makeOptimizer(fromOverrides({"optimizer.name=gd", "optimizer.momentum=0.9"}), {w})).momentum(), 0.0);
  // Nesterov without momentum is refused naming the key, as torch refuses it.
  EXPECT_NE(errorOf([&] { fromOverrides({"optimizer.name=sgd", "optimizer.nesterov=true"}); })
                .find("optimizer.momentum"), std::string::npos);
}

TEST(Optimizers, KeysWithoutEffectAreNamed) {
  auto warnings = [](const std::vector<std::string>& overrides) {
    const Settings c = Settings::defaults(overrides);
    return inertOptimizerKeys(optimizerOptions(c.optimizer), scheduleOptions(c.schedule), c.changedKeys());
  };
  auto has = [](const std::vector<std::string>& v, const std::string& key) {
    for (const auto& s : v)
      if (s.rfind(key + " has no effect", 0) == 0) return true;
    return false;
  };
  EXPECT_TRUE(has(warnings({"optimizer.name=adam", "optimizer.momentum=0.9"}), "optimizer.momentum"));
  EXPECT_TRUE(has(warnings({"optimizer.name=sgd", "optimizer.beta1=0.8"}), "optimizer.beta1"));
  EXPECT_TRUE(has(warnings({"optimizer.name=gd", "optimizer.momentum=0.9"}), "optimizer.momentum"));
  EXPECT_TRUE(has(warnings({"schedule.name=cosine", "schedule.gamma=0.5"}), "schedule.gamma"));
  EXPECT_TRUE(warnings({"optimizer.name=sgd", "optimizer.momentum=0.9"}).empty());
  // The shipped demo config sets nothing it does not use.
  const Settings demo = Settings::load(std::string(SLIDETRAIN_SOURCE_DIR) + "/configs/demo.yaml");
  EXPECT_TRUE(inertOptimizerKeys(optimizerOptions(demo.optimizer), scheduleOptions(demo.schedule),
                                 demo.changedKeys()).empty());
}

}  // namespace
}  // namespace slidetrain
