#pragma once
// Mixed precision (train.amp): autocast of the forward to float16 or bfloat16, and the dynamic
// loss scaler fp16 needs (PyTorch's GradScaler semantics). See docs/training.md.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/Tensor.h>
#include <c10/core/DeviceType.h>

#include "distributed/Comm.h"

namespace slidetrain {

enum class AmpMode { Off, Fp16, Bf16 };
/// "off" | "fp16" | "bf16" (ConfigError naming train.amp otherwise).
AmpMode parseAmpMode(const std::string& s);
const char* ampModeName(AmpMode m);

/// Autocast on `device` at the mode's precision for this scope (nothing for Off). Nested scopes
/// work; the autocast cache is cleared when the outermost one ends. libtorch 1.13 and 2.x.
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device, AmpMode mode);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_;
  bool wasEnabled_ = false;
  at::ScalarType oldDtype_;
};

struct LossScalerOptions {
  double initScale = 65536.0;  ///< 2^16, PyTorch's default
  double growthFactor = 2.0;
  double backoffFactor = 0.5;
  int64_t growthInterval = 2000;  ///< clean steps before the scale grows
  void validate() const;
};

/// Dynamic loss scaling for float16 training. Per optimizer step:
///   (loss * scale()).backward();  grads all-reduced;  bool ok = unscale(params);
///   if (ok) optimizer.step();     update(ok);
/// unscale() divides the gradients by the scale and checks them for inf/NaN; the flag is
/// all-reduced (max) on the device plane, so every rank skips the same steps even where its own
/// gradients were finite. update() halves the scale after a skipped step and multiplies it by
/// growthFactor after growthInterval clean steps in a row. The state (scale, clean-step count)
/// is part of a training checkpoint.
class LossScaler {
 public:
  /// `devicePlane` may be null (one process). The inf flag lives on `device`.
  LossScaler(LossScalerOptions options, std::shared_ptr<dist::Comm> devicePlane, c10::Device device);

  double scale() const { return scale_; }
  int64_t cleanSteps() const { return cleanSteps_; }
  void setState(double scale, int64_t cleanSteps);

  /// Gradients of `params` (those defined) divided by the scale in place; true when they are
  /// finite on every rank. Collective on the device plane (one all-reduce of one value).
  bool unscale(const std::vector<at::Tensor>& params);
  void update(bool finite);

 private:
  LossScalerOptions options_;
  std::shared_ptr<dist::Comm> comm_;
  double scale_;
  int64_t cleanSteps_ = 0;
  at::Tensor foundInf_;  ///< [1] float on the device, declared on the device plane
};

}  // namespace slidetrain
