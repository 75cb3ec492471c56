// SyncBatchNorm: BatchNorm whose training statistics are those of the global batch (all ranks).
#include "distributed/SyncBatchNorm.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <ATen/core/ivalue.h>
#include <torch/autograd.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/moduledict.h>

#include "distributed/Check.h"

namespace slidetrain::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Carries the communicator through AutogradContext::saved_data (which holds IValues only).
struct CommHolder : torch::CustomClassHolder {
  explicit CommHolder(std::shared_ptr<Comm> c) : comm(std::move(c)) {}
  std::shared_ptr<Comm> comm;
};

/// Reduction dims (all but channels) and the [1, C, 1, ...] view shape of per-channel tensors.
std::vector<int64_t> reduceDims(const at::Tensor& x) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}
at::Tensor perChannel(const at::Tensor& v, const at::Tensor& like) {
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[1] = v.numel();
  return v.view(shape);
}

/// Normalisation with given global mean/var; backward all-reduces the two per-channel sums the
/// input gradient needs from the whole global batch.
struct SyncBatchNormFunction : torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& mean, const at::Tensor& var, double eps,
                            double count, const at::IValue& comm) {
    at::Tensor out = at::batch_norm(input, weight, bias, mean, var, /*training=*/false, 0.0, eps,
                                    /*cudnn_enabled=*/false);
    ctx->save_for_backward({input, weight, mean, (var + eps).rsqrt()});
    ctx->saved_data["count"] = count;
    ctx->saved_data["comm"] = comm;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& mean = saved[2];
    const at::Tensor& invstd = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    auto holder = c10::static_intrusive_pointer_cast<CommHolder>(ctx->saved_data["comm"].toCapsule());
    const at::Tensor dy = grads[0].contiguous();
    const int64_t channels = mean.numel();
    const auto dims = reduceDims(x);

    const at::Tensor xmu = x - perChannel(mean, x);
    at::Tensor sumDy, sumDyXmu;
    if (x.numel() > 0) {
      sumDy = dy.sum(dims);
      sumDyXmu = (dy * xmu).sum(dims);
    } else {  // a rank with no samples still contributes (zeros) to the collective
      sumDy = at::zeros({channels}, mean.options());
      sumDyXmu = at::zeros({channels}, mean.options());
    }
    at::Tensor packed = at::cat({sumDy, sumDyXmu}).to(at::kDouble);
    holder->comm->declareDeviceTensor(packed);
    // One all-reduce per SyncBatchNorm layer per backward, in backward order: the same on every
    // rank running the same model (ranks with zero samples must run backward too).
    if (holder->comm->size() > 1) holder->comm->allReduce(packed, ReduceOp::Sum);
    const at::Tensor meanDy = (packed.narrow(0, 0, channels) / count).to(x.scalar_type());
    const at::Tensor proj =
        (packed.narrow(0, channels, channels) / count).to(x.scalar_type()) * invstd * invstd;
    const at::Tensor scale = weight.defined() ? invstd * weight : invstd;
    at::Tensor gradInput = (dy - perChannel(meanDy, x) - xmu * perChannel(proj, x)) *
                           perChannel(scale, x);
    // Weight/bias: the LOCAL sums. Summed over ranks they are the global gradient; GradSync
    // averages, which is why each rank's loss must be scaled (see lossScaleForGlobalMean).
    at::Tensor gradWeight, gradBias;
    if (weight.defined()) {
      gradWeight = sumDyXmu * invstd;
      gradBias = sumDy;
    }
    return {gradInput, gradWeight, gradBias, at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

bool isPlainBatchNorm(const torch::nn::Module& m) {
  return dynamic_cast<const torch::nn::BatchNorm1dImpl*>(&m) ||
         dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&m) ||
         dynamic_cast<const torch::nn::BatchNorm3dImpl*>(&m);
}

/// Builds a SyncBatchNorm with the options, weights and buffers of a torch BatchNorm.
template <typename Bn>
std::shared_ptr<SyncBatchNormImpl> fromTorch(const Bn& bn, const std::string& path,
                                             std::shared_ptr<Comm> comm) {
  const auto& o = bn.options;
  if (!o.momentum())
    throw DistError("convertSyncBatchNorm: " + path +
                    " uses a cumulative moving average (momentum None); SyncBatchNorm needs a "
                    "numeric momentum");
  SyncBatchNormOptions so;
  so.numFeatures = o.num_features();
  so.eps = o.eps();
  so.momentum = *o.momentum();
  so.affine = o.affine();
  so.trackRunningStats = o.track_running_stats();
  auto s = std::make_shared<SyncBatchNormImpl>(so, std::move(comm));
  c10::NoGradGuard noGrad;
  if (so.affine) {
    s->weight.copy_(bn.weight);
    s->bias.copy_(bn.bias);
  }
  if (so.trackRunningStats) {
    s->running_mean.copy_(bn.running_mean);
    s->running_var.copy_(bn.running_var);
    s->num_batches_tracked.copy_(bn.num_batches_tracked);
  }
  return s;
}

std::shared_ptr<SyncBatchNormImpl> convertOne(const std::shared_ptr<torch::nn::Module>& m,
                                              const std::string& path,
                                              std::shared_ptr<Comm> comm) {
  if (auto b = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) return fromTorch(*b, path, comm);
  if (auto b = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) return fromTorch(*b, path, comm);
  auto b = std::dynamic_pointer_cast<torch::nn::BatchNorm3dImpl>(m);
  return fromTorch(*b, path, comm);
}

/// Walks the tree. With apply=false it only checks that every torch BatchNorm is replaceable,
/// so a failing conversion leaves the model untouched.
int walk(torch::nn::Module& parent, const std::string& prefix, const std::shared_ptr<Comm>& comm,
         bool apply) {
  int converted = 0;
  for (const auto& item : parent.named_children()) {
    const std::string path = prefix.empty() ? item.key() : prefix + "." + item.key();
    const auto& child = item.value();
    if (auto s = std::dynamic_pointer_cast<SyncBatchNormImpl>(child)) {
      if (apply) s->setComm(comm);
      ++converted;
    } else if (isPlainBatchNorm(*child)) {
      auto* dict = dynamic_cast<torch::nn::ModuleDictImpl*>(&parent);
      if (!dict)
        throw DistError("convertSyncBatchNorm: module '" + path + "' is a " + child->name() +
                        " held by a " + parent.name() +
                        "; libtorch cannot swap a module its parent holds by a typed member or "
                        "inside Sequential/ModuleList. HINT: build it as "
                        "slidetrain::dist::SyncBatchNorm (plain BatchNorm until it gets a "
                        "communicator)");
      if (apply) dict->update({{item.key(), convertOne(child, path, comm)}});  // replaces in place
      ++converted;
    } else {
      converted += walk(*child, path, comm, apply);
    }
  }
  return converted;
}

}  // namespace

SyncBatchNormImpl::SyncBatchNormImpl(SyncBatchNormOptions options, std::shared_ptr<Comm> comm)
    : options_(options), comm_(std::move(comm)) {
  if (options_.numFeatures <= 0)
    throw std::invalid_argument("SyncBatchNorm: numFeatures must be positive");
  reset_parameters();
}

void SyncBatchNormImpl::reset_parameters() {
  // Same registration (names, undefined tensors when disabled) as torch::nn::BatchNorm, so
  // state_dicts and parameter order match PyTorch's.
  const int64_t c = options_.numFeatures;
  if (options_.affine) {
    weight = register_parameter("weight", at::ones({c}));
    bias = register_parameter("bias", at::zeros({c}));
  } else {
    weight = register_parameter("weight", at::Tensor(), /*requires_grad=*/false);
    bias = register_parameter("bias", at::Tensor(), /*requires_grad=*/false);
  }
  if (options_.trackRunningStats) {
    running_mean = register_buffer("running_mean", at::zeros({c}));
    running_var = register_buffer("running_var", at::ones({c}));
    num_batches_tracked = register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
  } else {
    running_mean = register_buffer("running_mean", at::Tensor());
    running_var = register_buffer("running_var", at::Tensor());
    num_batches_tracked = register_buffer("num_batches_tracked", at::Tensor());
  }
}

at::Tensor SyncBatchNormImpl::forward(const at::Tensor& input) {
  // Mixed precision (autocast fp16/bf16): normalise in float32 - statistics, running buffers and
  // the affine transform at full precision, as PyTorch's cuDNN and SyncBatchNorm kernels do - and
  // hand the next layer the input's precision.
  const at::ScalarType in = input.scalar_type();
  if (in == at::kHalf || in == at::kBFloat16) return normalize(input.to(at::kFloat)).to(in);
  return normalize(input);
}

at::Tensor SyncBatchNormImpl::normalize(const at::Tensor& input) {
  if (input.dim() < 2 || input.size(1) != options_.numFeatures)
    throw std::invalid_argument("SyncBatchNorm: expected input [N, " +
                                std::to_string(options_.numFeatures) + ", ...], got " +
                                std::to_string(input.dim()) + "-d input " +
                                c10::str(input.sizes()));
  const bool useBatchStats = is_training() || !running_mean.defined();
  if (is_training() && num_batches_tracked.defined()) {
    c10::NoGradGuard noGrad;
    num_batches_tracked.add_(1);
  }
  // With a communicator of any size - world size 1 included - training takes this path, so one
  // rank and N ranks compute BatchNorm the same way (statistics in float64, this backward). The
  // native kernel differs from it by ~1e-5 relative per step in libtorch 2.6, which made a 1-rank
  // run drift from a 2-rank run of the same global batch (docs/distributed.md).
  const bool sync = is_training() && comm_;
  if (!sync)
    return at::batch_norm(input, weight, bias, running_mean, running_var, useBatchStats,
                          options_.momentum, options_.eps, at::globalContext().userEnabledCuDNN());

  const int64_t channels = options_.numFeatures;
  const double localCount = static_cast<double>(input.numel() / channels);
  at::Tensor packed;
  {
    c10::NoGradGuard noGrad;
    const at::Tensor x = input.detach();
    at::Tensor sum, sumSq;
    if (x.numel() > 0) {
      const auto dims = reduceDims(x);
      // Accumulate in double: var = E[x^2] - E[x]^2 cancels, and float sums of many samples
      // would leave only a few correct digits of a small variance.
      sum = x.sum(dims, /*keepdim=*/false, at::kDouble);
      sumSq = (x * x).sum(dims, /*keepdim=*/false, at::kDouble);
    } else {
      sum = sumSq = at::zeros({channels}, x.options().dtype(at::kDouble));
    }
    packed = at::cat({sum, sumSq, at::full({1}, localCount, sum.options())});
    comm_->declareDeviceTensor(packed);
  }
  // One fused all-reduce per SyncBatchNorm layer per training forward, in forward order:
  // the same on every rank running the same model, including ranks with zero samples.
  if (comm_->size() > 1) comm_->allReduce(packed, ReduceOp::Sum);
  const double count = packed[2 * channels].item<double>();
  if (count <= 1)
    throw DistError(detail::rankHost() + ": SyncBatchNorm: expected more than 1 value per "
                    "channel over the global batch when training, got " +
                    std::to_string(static_cast<int64_t>(count)));
  const at::Tensor mean = packed.narrow(0, 0, channels) / count;
  // E[x^2] - E[x]^2 in double; clamped because rounding can make it slightly negative.
  const at::Tensor var = (packed.narrow(0, channels, channels) / count - mean * mean).clamp_min(0);
  if (running_mean.defined()) {
    c10::NoGradGuard noGrad;
    const double m = options_.momentum;
    running_mean.mul_(1 - m).add_(mean.to(running_mean.scalar_type()), m);
    running_var.mul_(1 - m).add_((var * (count / (count - 1))).to(running_var.scalar_type()), m);
  }
  // GCC 13/14 flag std::vector<bool>::reserve inlined from libtorch's Function::apply
  // (custom_function.h) with a false -Warray-bounds / -Wstringop-overflow (GCC bug 107852);
  // nothing of ours is involved.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
  return SyncBatchNormFunction::apply(
      input, weight, bias, mean.to(input.scalar_type()), var.to(input.scalar_type()),
      options_.eps, count, at::IValue::make_capsule(c10::make_intrusive<CommHolder>(comm_)));
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 13
#pragma GCC diagnostic pop
#endif
}

int convertSyncBatchNorm(torch::nn::Module& module, std::shared_ptr<Comm> comm) {
  if (auto* s = dynamic_cast<SyncBatchNormImpl*>(&module)) {
    s->setComm(std::move(comm));
    return 1;
  }
  if (isPlainBatchNorm(module))
    throw DistError("convertSyncBatchNorm: the root module is a " + module.name() +
                    ", which cannot be replaced in place; build it as slidetrain::dist::SyncBatchNorm");
  walk(module, "", comm, /*apply=*/false);
  return walk(module, "", comm, /*apply=*/true);
}

}  // namespace slidetrain::dist
