// Mixed precision: see Amp.h.
#include "src/train/Amp.h"

#include <cmath>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "src/config/Errors.h"

// libtorch 2.4 replaced the per-backend autocast setters (set_enabled, set_cpu_enabled,
// set_autocast_gpu_dtype, ...) by ones taking the device type; 2.6 marks the old ones deprecated.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define SLIDETRAIN_AUTOCAST_BY_DEVICE 1
#endif

namespace slidetrain {
namespace {

bool autocastEnabled(c10::DeviceType d) {
#ifdef SLIDETRAIN_AUTOCAST_BY_DEVICE
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

void setAutocastEnabled(c10::DeviceType d, bool on) {
#ifdef SLIDETRAIN_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(d, on);
#else
  if (d == c10::kCUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
#endif
}

at::ScalarType autocastDtype(c10::DeviceType d) {
#ifdef SLIDETRAIN_AUTOCAST_BY_DEVICE
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

void setAutocastDtype(c10::DeviceType d, at::ScalarType t) {
#ifdef SLIDETRAIN_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_dtype(d, t);
#else
  if (d == c10::kCUDA)
    at::autocast::set_autocast_gpu_dtype(t);
  else
    at::autocast::set_autocast_cpu_dtype(t);
#endif
}

}  // namespace

AmpMode parseAmpMode(const std::string& s) {
  if (s == "off") return AmpMode::Off;
  if (s == "fp16") return AmpMode::Fp16;
  if (s == "bf16") return AmpMode::Bf16;
  throw ConfigError("train.amp: expected off, fp16 or bf16, got \"" + s + "\"");
}

const char* ampModeName(AmpMode m) {
  switch (m) {
    case AmpMode::Off: return "off";
    case AmpMode::Fp16: return "fp16";
    case AmpMode::Bf16: return "bf16";
  }
  return "off";
}

AutocastScope::AutocastScope(c10::DeviceType device, AmpMode mode)
    : active_(mode != AmpMode::Off), device_(device), oldDtype_(at::kFloat) {
  if (!active_) return;
  wasEnabled_ = autocastEnabled(device_);
  oldDtype_ = autocastDtype(device_);
  setAutocastDtype(device_, mode == AmpMode::Fp16 ? at::kHalf : at::kBFloat16);
  setAutocastEnabled(device_, true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // As torch.autocast's __exit__: the cast cache lives until the outermost region ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  setAutocastEnabled(device_, wasEnabled_);
  setAutocastDtype(device_, oldDtype_);
}

void LossScalerOptions::validate() const {
  if (!(initScale > 0) || !std::isfinite(initScale))
    throw ConfigError("train.amp_init_scale: must be a positive finite number");
  if (!(growthFactor > 1)) throw ConfigError("LossScaler: growthFactor must be > 1");
  if (!(backoffFactor > 0 && backoffFactor < 1))
    throw ConfigError("LossScaler: backoffFactor must be in (0, 1)");
  if (growthInterval < 1) throw ConfigError("train.amp_growth_interval: must be >= 1");
}

LossScaler::LossScaler(LossScalerOptions options, std::shared_ptr<dist::Comm> devicePlane,
                       c10::Device device)
    : options_(options), comm_(std::move(devicePlane)), scale_(options.initScale) {
  options_.validate();
  foundInf_ = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device));
  if (comm_) comm_->declareDeviceTensor(foundInf_);
}

void LossScaler::setState(double scale, int64_t cleanSteps) {
  if (!(scale > 0) || !std::isfinite(scale))
    throw std::runtime_error("LossScaler: invalid saved scale " + std::to_string(scale));
  scale_ = scale;
  cleanSteps_ = cleanSteps;
}

bool LossScaler::unscale(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  foundInf_.zero_();
  const double inv = 1.0 / scale_;
  if (!grads.empty() && grads.front().is_cuda()) {
    // One fused kernel over all gradients (what torch.cuda.amp.GradScaler runs).
    at::Tensor invScale = at::full({1}, inv, foundInf_.options());
    at::_amp_foreach_non_finite_check_and_unscale_(grads, foundInf_, invScale);
  } else {
    std::vector<at::Tensor> bad;
    for (auto& g : grads) {
      g.mul_(inv);
      bad.push_back(at::isfinite(g).logical_not().any());
    }
    if (!bad.empty()) foundInf_.copy_(at::stack(bad).any().to(at::kFloat).view({1}));
  }
  // Every rank must skip the same steps: the flag is all-reduced even when the gradients were
  // (as with GradSync) already averaged, so a rank-local inf or NaN cannot split the ranks.
  if (comm_ && comm_->size() > 1) comm_->allReduce(foundInf_, dist::ReduceOp::Max);
  return foundInf_.item<float>() == 0.0f;
}

void LossScaler::update(bool finite) {
  if (!finite) {
    scale_ *= options_.backoffFactor;
    cleanSteps_ = 0;
    return;
  }
  if (++cleanSteps_ >= options_.growthInterval) {
    scale_ *= options_.growthFactor;
    cleanSteps_ = 0;
  }
}

}  // namespace slidetrain
