// The foreach optimizers: see ForeachOptimizers.h. Each step() follows torch.optim's
// _multi_tensor_<name> (and libtorch's per-parameter step, which does the same arithmetic).
#include "src/train/ForeachOptimizers.h"

#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>

namespace slidetrain {
namespace {

/// The key of a parameter's state in libtorch's Optimizer::state_: the TensorImpl address, as a
/// string in libtorch 1.x (c10::guts::to_string of the pointer), as the pointer itself later.
template <typename Map>
typename Map::key_type keyOf(const Map&, const at::Tensor& p) {
  using Key = typename Map::key_type;
  void* impl = p.unsafeGetTensorImpl();
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream os;
    os << impl;
    return os.str();
  } else {
    return static_cast<Key>(impl);
  }
}

/// The parameters of a group that have a gradient, and those gradients.
struct Group {
  std::vector<at::Tensor> params, grads;
};

Group withGrads(const torch::optim::OptimizerParamGroup& g) {
  Group out;
  for (const auto& p : g.params())
    if (p.grad().defined()) out.params.push_back(p), out.grads.push_back(p.grad());
  return out;
}

/// Runs the closure (if any) with gradients on, as libtorch's optimizers do.
at::Tensor lossOf(const torch::optim::Optimizer::LossClosure& closure) {
  if (!closure) return {};
  at::AutoGradMode enable(true);
  return closure();
}

/// State of `p` in `map`, created by `make` the first time.
template <typename State, typename Map, typename Make>
State& stateOf(Map& map, const at::Tensor& p, Make&& make) {
  auto key = keyOf(map, p);
  auto it = map.find(key);
  if (it == map.end()) it = map.emplace(key, make()).first;
  return static_cast<State&>(*it->second);
}

at::Tensor zerosLike(const at::Tensor& p) { return at::zeros_like(p, at::MemoryFormat::Preserve); }

}  // namespace

torch::Tensor ForeachSGD::step(LossClosure closure) {
  at::Tensor loss = lossOf(closure);
  torch::NoGradGuard noGrad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    if (o.dampening() != 0) throw std::invalid_argument("ForeachSGD: dampening is not supported");
    Group g = withGrads(group);
    if (g.params.empty()) continue;
    std::vector<at::Tensor> d = g.grads;
    if (o.weight_decay() != 0) d = at::_foreach_add(d, g.params, o.weight_decay());
    if (o.momentum() != 0) {
      // buf = d on the first step (a copy), else buf * momentum + d (dampening 0).
      std::vector<at::Tensor> bufs, old, oldD;
      for (size_t i = 0; i < g.params.size(); ++i) {
        bool created = false;
        auto& s = stateOf<torch::optim::SGDParamState>(state_, g.params[i], [&] {
          created = true;
          auto st = std::make_unique<torch::optim::SGDParamState>();
          st->momentum_buffer(d[i].clone().detach());
          return st;
        });
        bufs.push_back(s.momentum_buffer());
        if (!created) old.push_back(s.momentum_buffer()), oldD.push_back(d[i]);
      }
      if (!old.empty()) {
        at::_foreach_mul_(old, o.momentum());
        at::_foreach_add_(old, oldD, 1.0);
      }
      d = o.nesterov() ? at::_foreach_add(d, bufs, o.momentum()) : bufs;
    }
    at::_foreach_add_(g.params, d, -o.lr());
  }
  return loss;
}

namespace {

/// Adam and AdamW after the (coupled or decoupled) weight decay: moments, bias corrections per
/// parameter (their step counts may differ), the update.
template <typename State, typename Options, typename Map>
void adamUpdate(Map& state, const Options& o, Group& g, std::vector<at::Tensor> grads) {
  if (o.amsgrad()) throw std::invalid_argument("foreach Adam/AdamW: amsgrad is not supported");
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  std::vector<at::Tensor> expAvg, expAvgSq;
  std::vector<at::Scalar> bc2Sqrt, stepSize;
  for (const auto& p : g.params) {
    auto& s = stateOf<State>(state, p, [&] {
      auto st = std::make_unique<State>();
      st->step(0);
      st->exp_avg(zerosLike(p));
      st->exp_avg_sq(zerosLike(p));
      return st;
    });
    s.step(s.step() + 1);
    const double bc1 = 1 - std::pow(beta1, static_cast<double>(s.step()));
    const double bc2 = 1 - std::pow(beta2, static_cast<double>(s.step()));
    bc2Sqrt.emplace_back(std::sqrt(bc2));
    stepSize.emplace_back(-o.lr() / bc1);
    expAvg.push_back(s.exp_avg());
    expAvgSq.push_back(s.exp_avg_sq());
  }
  at::_foreach_mul_(expAvg, beta1);
  at::_foreach_add_(expAvg, grads, 1 - beta1);
  at::_foreach_mul_(expAvgSq, beta2);
  at::_foreach_addcmul_(expAvgSq, grads, grads, 1 - beta2);
  std::vector<at::Tensor> denom = at::_foreach_sqrt(expAvgSq);
  at::_foreach_div_(denom, bc2Sqrt);
  at::_foreach_add_(denom, o.eps());
  at::_foreach_addcdiv_(g.params, expAvg, denom, stepSize);
}

}  // namespace

torch::Tensor ForeachAdam::step(LossClosure closure) {
  at::Tensor loss = lossOf(closure);
  torch::NoGradGuard noGrad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamOptions&>(group.options());
    Group g = withGrads(group);
    if (g.params.empty()) continue;
    std::vector<at::Tensor> d = g.grads;
    if (o.weight_decay() != 0) d = at::_foreach_add(d, g.params, o.weight_decay());  // coupled L2
    adamUpdate<torch::optim::AdamParamState>(state_, o, g, std::move(d));
  }
  return loss;
}

torch::Tensor ForeachAdamW::step(LossClosure closure) {
  at::Tensor loss = lossOf(closure);
  torch::NoGradGuard noGrad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    Group g = withGrads(group);
    if (g.params.empty()) continue;
    if (o.weight_decay() != 0) at::_foreach_mul_(g.params, 1 - o.lr() * o.weight_decay());  // decoupled
    adamUpdate<torch::optim::AdamWParamState>(state_, o, g, g.grads);
  }
  return loss;
}

torch::Tensor ForeachRMSprop::step(LossClosure closure) {
  at::Tensor loss = lossOf(closure);
  torch::NoGradGuard noGrad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::RMSpropOptions&>(group.options());
    if (o.centered()) throw std::invalid_argument("ForeachRMSprop: centered is not supported");
    Group g = withGrads(group);
    if (g.params.empty()) continue;
    std::vector<at::Tensor> squareAvg, bufs;
    for (const auto& p : g.params) {
      auto& s = stateOf<torch::optim::RMSpropParamState>(state_, p, [&] {
        auto st = std::make_unique<torch::optim::RMSpropParamState>();
        st->step(0);
        st->square_avg(zerosLike(p));
        if (o.momentum() > 0) st->momentum_buffer(zerosLike(p));
        return st;
      });
      s.step(s.step() + 1);
      squareAvg.push_back(s.square_avg());
      if (o.momentum() > 0) bufs.push_back(s.momentum_buffer());
    }
    std::vector<at::Tensor> d = g.grads;
    if (o.weight_decay() != 0) d = at::_foreach_add(d, g.params, o.weight_decay());
    at::_foreach_mul_(squareAvg, o.alpha());
    at::_foreach_addcmul_(squareAvg, d, d, 1 - o.alpha());
    std::vector<at::Tensor> avg = at::_foreach_sqrt(squareAvg);
    at::_foreach_add_(avg, o.eps());
    if (o.momentum() > 0) {
      at::_foreach_mul_(bufs, o.momentum());
      at::_foreach_addcdiv_(bufs, d, avg, 1.0);
      at::_foreach_add_(g.params, bufs, -o.lr());
    } else {
      at::_foreach_addcdiv_(g.params, d, avg, -o.lr());
    }
  }
  return loss;
}

torch::Tensor ForeachAdagrad::step(LossClosure closure) {
  at::Tensor loss = lossOf(closure);
  torch::NoGradGuard noGrad;
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::AdagradOptions&>(group.options());
    Group g = withGrads(group);
    if (g.params.empty()) continue;
    std::vector<at::Tensor> sums;
    std::vector<at::Scalar> clr;
    for (const auto& p : g.params) {
      // libtorch's constructor made every parameter's state (the accumulator); a parameter added
      // later gets the same.
      auto& s = stateOf<torch::optim::AdagradParamState>(state_, p, [&] {
        auto st = std::make_unique<torch::optim::AdagradParamState>();
        st->step(0);
        st->sum(at::full_like(p, o.initial_accumulator_value(), at::MemoryFormat::Preserve));
        return st;
      });
      s.step(s.step() + 1);
      sums.push_back(s.sum());
      clr.emplace_back(-o.lr() / (1 + static_cast<double>(s.step() - 1) * o.lr_decay()));
    }
    std::vector<at::Tensor> d = g.grads;
    if (o.weight_decay() != 0) d = at::_foreach_add(d, g.params, o.weight_decay());
    at::_foreach_addcmul_(sums, d, d, 1.0);
    std::vector<at::Tensor> stdev = at::_foreach_sqrt(sums);
    at::_foreach_add_(stdev, o.eps());
    at::_foreach_addcdiv_(g.params, d, stdev, clr);
  }
  return loss;
}

}  // namespace slidetrain
