// Optimizer factory over libtorch's optimizers, and learning-rate schedules as pure functions of
// the step (so a resumed run needs only the step number, not scheduler state).
#include "src/train/Optim.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "src/train/ForeachOptimizers.h"

namespace slidetrain {
namespace {

[[noreturn]] void fail(const std::string& key, const std::string& what, double got) {
  std::string value = std::to_string(got);
  throw std::invalid_argument(key + ": " + what + ", got " + value);
}

const std::vector<std::string> kOptimizers = {"gd",      "sgd",     "momentum", "nesterov",
                                              "adagrad", "rmsprop", "adam",     "adamw"};
const std::vector<std::string> kSchedules = {"constant", "step", "multistep", "cosine"};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

OptimizerOptions optimizerOptions(const OptimizerSettings& s) {
  OptimizerOptions o;
  o.name = s.name;
  o.lr = s.lr;
  o.momentum = s.momentum;
  o.nesterov = s.nesterov;
  o.rmspropMomentum = s.rmspropMomentum;
  o.alpha = s.alpha;
  o.weightDecay = s.weightDecay;
  o.beta1 = s.beta1;
  o.beta2 = s.beta2;
  o.eps = s.eps;
  o.validate();
  return o;
}

ScheduleOptions scheduleOptions(const ScheduleSettings& s) {
  ScheduleOptions o;
  o.name = s.name;
  o.gamma = s.gamma;
  o.milestones = s.milestones;
  o.warmupSteps = s.warmupSteps;
  o.minLr = s.minLr;
  o.validate();
  return o;
}

void OptimizerOptions::validate() const {
  if (!contains(kOptimizers, name))
    throw std::invalid_argument("optimizer.name: unknown optimizer '" + name +
                                "'; expected one of: " + joined(kOptimizers));
  if (!(lr > 0)) fail("optimizer.lr", "expected a positive learning rate", lr);
  if (momentum && !(*momentum >= 0 && *momentum < 1))
    fail("optimizer.momentum", "expected [0, 1)", *momentum);
  if (!(weightDecay >= 0)) fail("optimizer.weight_decay", "expected >= 0", weightDecay);
  if (!(beta1 >= 0 && beta1 < 1)) fail("optimizer.beta1", "expected [0, 1)", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) fail("optimizer.beta2", "expected [0, 1)", beta2);
  if (!(eps > 0)) fail("optimizer.eps", "expected > 0", eps);
  if (!(alpha > 0 && alpha < 1)) fail("optimizer.alpha", "expected (0, 1)", alpha);
  if (effectiveNesterov() && effectiveMomentum() == 0)
    fail("optimizer.momentum", "nesterov needs momentum > 0", effectiveMomentum());
}

double OptimizerOptions::effectiveMomentum() const {
  if (name == "momentum" || name == "nesterov") return momentum.value_or(0.9);
  if (name == "sgd") return momentum.value_or(0.0);
  return 0.0;  // gd and the adaptive optimizers (rmsprop has its own rmspropMomentum)
}

std::vector<std::string> inertOptimizerKeys(const OptimizerOptions& o, const ScheduleOptions& s,
                                            const std::vector<std::string>& nonDefaultKeys) {
  // Which optimizer/schedule keys each choice reads.
  const std::vector<std::pair<std::string, std::vector<std::string>>> uses = {
      {"optimizer.momentum", {"sgd", "momentum", "nesterov"}},
      {"optimizer.nesterov", {"sgd"}},
      {"optimizer.rmsprop_momentum", {"rmsprop"}},
      {"optimizer.alpha", {"rmsprop"}},
      {"optimizer.beta1", {"adam", "adamw"}},
      {"optimizer.beta2", {"adam", "adamw"}},
      {"optimizer.eps", {"adagrad", "rmsprop", "adam", "adamw"}},
      {"schedule.gamma", {"step", "multistep"}},
      {"schedule.milestones", {"step", "multistep"}},
      {"schedule.min_lr", {"cosine"}}};
  std::vector<std::string> out;
  for (const auto& [key, users] : uses) {
    if (!contains(nonDefaultKeys, key)) continue;
    const bool isSchedule = key.rfind("schedule.", 0) == 0;
    const std::string& chosen = isSchedule ? s.name : o.name;
    if (!contains(users, chosen))
      out.push_back(key + " has no effect with " + (isSchedule ? "schedule.name " : "optimizer.name ") +
                    chosen + " (it is read by " + joined(users) + ")");
  }
  return out;
}

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const OptimizerOptions& o,
                                                       std::vector<at::Tensor> params) {
  o.validate();
  namespace opt = torch::optim;
  if (o.name == "gd" || o.name == "sgd" || o.name == "momentum" || o.name == "nesterov") {
    // One update, torch.optim.SGD's: gd is plain descent on the full batch the trainer feeds;
    // sgd uses optimizer.momentum / optimizer.nesterov when given; momentum and nesterov are the
    // seed study's names for SGD with momentum 0.9 (plain or Nesterov).
    return std::make_unique<ForeachSGD>(std::move(params), opt::SGDOptions(o.lr)
                                                            .momentum(o.effectiveMomentum())
                                                            .nesterov(o.effectiveNesterov())
                                                            .weight_decay(o.weightDecay));
  }
  if (o.name == "adagrad") {
    return std::make_unique<ForeachAdagrad>(
        std::move(params), opt::AdagradOptions(o.lr).eps(o.eps).weight_decay(o.weightDecay));
  }
  if (o.name == "rmsprop") {
    return std::make_unique<ForeachRMSprop>(std::move(params), opt::RMSpropOptions(o.lr)
                                                                 .alpha(o.alpha)
                                                                 .eps(o.eps)
                                                                 .momentum(o.rmspropMomentum)
                                                                 .weight_decay(o.weightDecay));
  }
  if (o.name == "adam") {
    return std::make_unique<ForeachAdam>(std::move(params),
                                       opt::AdamOptions(o.lr)
                                           .betas(std::make_tuple(o.beta1, o.beta2))
                                           .eps(o.eps)
                                           .weight_decay(o.weightDecay));  // coupled L2
  }
  return std::make_unique<ForeachAdamW>(std::move(params),
                                      opt::AdamWOptions(o.lr)
                                          .betas(std::make_tuple(o.beta1, o.beta2))
                                          .eps(o.eps)
                                          .weight_decay(o.weightDecay));  // decoupled
}

void ScheduleOptions::validate() const {
  if (!contains(kSchedules, name))
    throw std::invalid_argument("schedule.name: unknown schedule '" + name +
                                "'; expected one of: " + joined(kSchedules));
  if (!(gamma > 0)) fail("schedule.gamma", "expected a positive factor", gamma);
  if (name == "multistep" && milestones.empty())
    throw std::invalid_argument(
        "schedule.milestones: multistep needs at least one milestone (fractions of training, "
        "e.g. [0.5, 0.75])");
  for (size_t i = 0; i < milestones.size(); ++i) {
    if (!(milestones[i] > 0 && milestones[i] < 1))
      fail("schedule.milestones", "expected fractions of training in (0, 1)", milestones[i]);
    if (i > 0 && milestones[i] <= milestones[i - 1])
      fail("schedule.milestones", "expected strictly increasing fractions", milestones[i]);
  }
  if (warmupSteps < 0)
    fail("schedule.warmup_steps", "expected >= 0", static_cast<double>(warmupSteps));
  if (!(minLr >= 0)) fail("schedule.min_lr", "expected >= 0", minLr);
}

LrSchedule::LrSchedule(ScheduleOptions options, double baseLr, int64_t totalSteps)
    : options_(std::move(options)), baseLr_(baseLr), totalSteps_(totalSteps) {
  options_.validate();
  if (totalSteps_ < 0) fail("train total steps", "expected >= 0", static_cast<double>(totalSteps));
  // "step" is a single decay at half of training unless told otherwise (as in the BN paper).
  if (options_.name == "step" && options_.milestones.empty()) options_.milestones = {0.5};
}

double LrSchedule::lrAt(int64_t step) const {
  const int64_t warmup = options_.warmupSteps;
  // Linear warmup reaches baseLr at the last warmup step, and is never exactly 0 so the first
  // step still moves the weights.
  if (step < warmup) return baseLr_ * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const std::string& name = options_.name;
  if (name == "step" || name == "multistep") {
    double lr = baseLr_;
    for (double m : options_.milestones)
      if (step >= static_cast<int64_t>(std::llround(m * static_cast<double>(totalSteps_))))
        lr *= options_.gamma;
    return lr;
  }
  if (name == "cosine") {
    const int64_t span = std::max<int64_t>(1, totalSteps_ - warmup);
    double progress = std::min(1.0, static_cast<double>(step - warmup) / static_cast<double>(span));
    return options_.minLr +
           (baseLr_ - options_.minLr) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
  return baseLr_;
}

void LrSchedule::apply(torch::optim::Optimizer& opt, int64_t step) const {
  const double lr = lrAt(step);
  for (auto& group : opt.param_groups()) group.options().set_lr(lr);
}

}  // namespace slidetrain
