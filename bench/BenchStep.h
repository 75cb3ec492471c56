#pragma once
// The training step the benchmarks time (bench_train_step, bench_gpu_step): a zoo model built
// from seed 0, the trainer's loss (sum / batch) and SGD with momentum 0.9 (lr 0.01); forward
// under AutocastScope, the loss in float32, fp16 through the LossScaler (unscale, skip on
// inf/NaN, update) - the trainer's step on one device, without the distributed parts.
#include <memory>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <torch/utils.h>

#include "src/train/Amp.h"
#include "src/train/Loss.h"
#include "src/models/ModelZoo.h"
#include "src/train/Optim.h"

namespace slidetrain::bench {

struct Stepper {
  std::shared_ptr<Model> model;
  std::unique_ptr<torch::optim::Optimizer> opt;
  std::unique_ptr<LossScaler> scaler;
  std::vector<at::Tensor> params;
  AmpMode amp;
  at::Device device;
  LossOptions loss;
  int64_t skipped = 0;  ///< fp16 steps skipped for inf/NaN gradients

  Stepper(const std::string& name, int size, AmpMode a = AmpMode::Off,
          const at::Device& d = at::Device(at::kCPU))
      : amp(a), device(d) {
    torch::manual_seed(0);
    ModelOptions mo;
    mo.name = name;
    mo.numClasses = 2;
    mo.inputSize = size;
    model = buildModel(mo);
    model->to(device);
    model->train();
    params = model->parameters();
    OptimizerOptions oo;
    oo.name = "momentum";
    oo.lr = 0.01;
    oo.momentum = 0.9;
    opt = makeOptimizer(oo, params);
    if (amp == AmpMode::Fp16) scaler = std::make_unique<LossScaler>(LossScalerOptions{}, nullptr, device);
  }

  void step(const at::Tensor& x, const at::Tensor& y) {
    opt->zero_grad();
    at::Tensor logits;
    {
      const bool autocast = amp == AmpMode::Bf16 || (amp == AmpMode::Fp16 && device.is_cuda());
      AutocastScope ac(device.type(), autocast ? amp : AmpMode::Off);
      logits = model->forward(x);
    }
    at::Tensor l = lossSum(logits.to(at::kFloat), y, loss) / double(x.size(0));
    if (scaler) l = l * scaler->scale();
    l.backward();
    const bool finite = scaler ? scaler->unscale(params) : true;
    if (finite) opt->step();
    if (scaler) scaler->update(finite);
    skipped += finite ? 0 : 1;
  }
};

}  // namespace slidetrain::bench
