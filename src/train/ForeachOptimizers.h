#pragma once
// libtorch's optimizers with step() done over all the parameters of a group at once, with ATen's
// multi-tensor kernels (at::_foreach_*), as torch.optim's foreach implementations do: on CUDA a
// handful of fused launches per step instead of several per parameter (on the CPU the same
// arithmetic, looped by ATen). Each class is libtorch's optimizer of the same name with only
// step() replaced, so options, per-parameter state, save/load and the checkpoints stay as they
// were; the update is torch.optim's, operation for operation (tests/train/OptimTest.cpp checks
// every one against libtorch's own step). Nothing in step() reads a device value back.
// Not supported (never configured by slidetrain): Adam's amsgrad, RMSprop's centered, SGD's
// dampening, Adagrad's lr_decay is honoured.
#include <torch/optim/adagrad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/rmsprop.h>
#include <torch/optim/sgd.h>

namespace slidetrain {

class ForeachSGD final : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class ForeachAdam final : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class ForeachAdamW final : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class ForeachRMSprop final : public torch::optim::RMSprop {
 public:
  using torch::optim::RMSprop::RMSprop;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class ForeachAdagrad final : public torch::optim::Adagrad {
 public:
  using torch::optim::Adagrad::Adagrad;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace slidetrain
