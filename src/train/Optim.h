#pragma once
// Optimizers (GD, SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW) and LR schedules.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "src/config/Settings.h"

namespace slidetrain {

struct OptimizerOptions {
  std::string name = "sgd";  ///< gd, sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw
  double lr = 0.01;
  /// torch.optim.SGD's momentum: gd and sgd use it when given (none: 0); the seed-study names
  /// momentum and nesterov default to 0.9. gd is plain full-batch descent and ignores it.
  std::optional<double> momentum;
  bool nesterov = false;     ///< sgd: Nesterov momentum (needs momentum > 0); the name nesterov implies it
  double rmspropMomentum = 0.0;  ///< rmsprop's own momentum (plain RMSprop by default)
  double weightDecay = 0.0;  ///< L2 penalty (decoupled for adamw)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double alpha = 0.99;       ///< rmsprop's smoothing constant (Keras calls it rho)
  void validate() const;
  /// The momentum the optimizer uses (0 where it has none).
  double effectiveMomentum() const;
  bool effectiveNesterov() const { return name == "nesterov" || (name == "sgd" && nesterov); }
};

/// optimizer.* (validated).
OptimizerOptions optimizerOptions(const OptimizerSettings& s);

/// libtorch's optimizer of the name with a multi-tensor step (ForeachOptimizers.h): the same
/// options, state and checkpoints, torch.optim's update.
std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const OptimizerOptions& options,
                                                       std::vector<at::Tensor> params);

struct ScheduleOptions {
  std::string name = "constant";  ///< constant, step, multistep, cosine (all after warmup)
  double gamma = 0.1;             ///< factor for step/multistep
  std::vector<double> milestones; ///< fractions of total steps for multistep (step: {0.5})
  int64_t warmupSteps = 0;        ///< linear warmup from 0
  double minLr = 0.0;             ///< cosine floor
  void validate() const;
};

/// schedule.* (validated).
ScheduleOptions scheduleOptions(const ScheduleSettings& s);

/// Keys set to a non-default value that the chosen optimizer and schedule ignore, as warnings
/// naming the key ("optimizer.beta1 has no effect with optimizer.name sgd").
std::vector<std::string> inertOptimizerKeys(const OptimizerOptions& o, const ScheduleOptions& s,
                                            const std::vector<std::string>& nonDefaultKeys);

/// LR as a pure function of the step, so resume needs only the step number.
class LrSchedule {
 public:
  LrSchedule(ScheduleOptions options, double baseLr, int64_t totalSteps);
  double lrAt(int64_t step) const;
  /// Sets every param group's lr to lrAt(step).
  void apply(torch::optim::Optimizer& opt, int64_t step) const;

 private:
  ScheduleOptions options_;
  double baseLr_;
  int64_t totalSteps_;
};

}  // namespace slidetrain
