// SyncBatchNorm: BatchNorm whose training statistics are those of the global batch (all ranks).
#include "distributed/SyncBatchNorm.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <ATen/core/ivalue.h>
#include <torch/autograd.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/moduledict.h>

#include "distributed/BatchNormKernels.h"
#include "distributed/Check.h"

namespace slidetrain::dist {

namespace {
thread_local const std::vector<int64_t>* tCurrentScope = nullptr;
}  // namespace

GlobalBatchScope::GlobalBatchScope(std::vector<int64_t> samplesPerRank)
    : samples_(std::move(samplesPerRank)), previous_(tCurrentScope) {
  tCurrentScope = &samples_;
}

GlobalBatchScope::~GlobalBatchScope() { tCurrentScope = previous_; }

const std::vector<int64_t>* GlobalBatchScope::current() { return tCurrentScope; }

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Carries the communicator through AutogradContext::saved_data (which holds IValues only).
struct CommHolder : torch::CustomClassHolder {
  explicit CommHolder(std::shared_ptr<Comm> c) : comm(std::move(c)) {}
  std::shared_ptr<Comm> comm;
};

at::IValue commValue(const std::shared_ptr<Comm>& comm) {
  return at::IValue::make_capsule(c10::make_intrusive<CommHolder>(comm));
}

const std::shared_ptr<Comm>& commOf(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<CommHolder>(ctx->saved_data["comm"].toCapsule())->comm;
}

/// [sum dy, sum dy*(x-mean)] over the global batch. One all-reduce per SyncBatchNorm layer per
/// backward, in backward order: the same on every rank running the same model (ranks with zero
/// samples run backward too).
at::Tensor globalGradSums(AutogradContext* ctx, const at::Tensor& sumDy, const at::Tensor& sumDyXmu) {
  at::Tensor packed = at::cat({sumDy, sumDyXmu});
  const std::shared_ptr<Comm>& comm = commOf(ctx);
  comm->declareDeviceTensor(packed);
  if (comm->size() > 1) comm->allReduce(packed, ReduceOp::Sum);
  return packed;
}

[[noreturn]] void tooFewValues(int64_t count) {
  throw DistError(detail::rankHost() + ": SyncBatchNorm: expected more than 1 value per channel over "
                  "the global batch when training, got " + std::to_string(count));
}

bool half(at::ScalarType t) { return t == at::kHalf || t == at::kBFloat16; }

/// CPU: normalisation with the global mean and invstd (float64 [C]) in one fused pass; backward
/// in two (sums, all-reduce, input gradient).
struct CpuFunction : torch::autograd::Function<CpuFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd,
                            double count, const at::IValue& comm) {
    const at::Tensor scale = weight.defined() ? invstd * weight.to(at::kDouble) : invstd;
    const at::Tensor shift = (bias.defined() ? bias.to(at::kDouble) : at::zeros_like(mean)) - mean * scale;
    ctx->save_for_backward({input, weight, mean, invstd});
    ctx->saved_data["count"] = count;
    ctx->saved_data["comm"] = comm;
    return bn::channelAffine(input, scale, shift);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& mean = saved[2];
    const at::Tensor& invstd = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    const at::Tensor& dy = grads[0];
    auto [sumDy, sumDyXmu] = bn::gradSums(dy, x, mean);
    // Weight/bias: the LOCAL sums. Summed over ranks they are the global gradient; GradSync
    // averages, which is why each rank's loss must be scaled (see lossScaleForGlobalMean).
    at::Tensor gradWeight, gradBias;
    if (weight.defined()) {
      gradWeight = (sumDyXmu * invstd).to(weight.scalar_type());
      gradBias = sumDy.to(weight.scalar_type());
    }
    at::Tensor gradInput;
    if (ctx->needs_input_grad(0)) {
      const int64_t channels = mean.numel();
      const at::Tensor packed = globalGradSums(ctx, sumDy, sumDyXmu);
      const at::Tensor meanDy = packed.narrow(0, 0, channels) / count;
      const at::Tensor proj = packed.narrow(0, channels, channels) / count * invstd * invstd;
      const at::Tensor scale = weight.defined() ? invstd * weight.to(at::kDouble) : invstd;
      // dx = (dy - meanDy - (x - mean) * proj) * scale = dy * a + x * b + c per channel.
      gradInput = bn::gradAffine(dy, x, scale, -proj * scale, (mean * proj - meanDy) * scale);
    }
    return {gradInput, gradWeight, gradBias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

/// CUDA: torch.nn.SyncBatchNorm's kernels. mean and invstd are the global ones; counts holds
/// the values per channel of each rank that contributed (int32, on the device).
struct CudaFunction : torch::autograd::Function<CudaFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias, const at::Tensor& mean, const at::Tensor& invstd,
                            const at::Tensor& counts, double eps, const at::IValue& comm) {
    ctx->save_for_backward({input, weight, mean, invstd, counts});
    ctx->saved_data["comm"] = comm;
    return at::batch_norm_elemt(input, weight, bias, mean, invstd, eps);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& mean = saved[2];
    const at::Tensor& invstd = saved[3];
    const at::Tensor& counts = saved[4];
    const at::Tensor dy = grads[0].contiguous(x.suggest_memory_format());
    const bool needInput = ctx->needs_input_grad(0), affine = weight.defined();
    auto [sumDy, sumDyXmu, gradWeight, gradBias] = at::batch_norm_backward_reduce(
        dy, x, mean, invstd, weight, needInput, affine && ctx->needs_input_grad(1),
        affine && ctx->needs_input_grad(2));
    at::Tensor gradInput;
    if (needInput) {
      const int64_t channels = mean.numel();
      const at::Tensor packed = globalGradSums(ctx, sumDy, sumDyXmu);
      gradInput = at::batch_norm_backward_elemt(dy, x, mean, invstd, weight, packed.narrow(0, 0, channels),
                                                packed.narrow(0, channels, channels), counts);
    }
    return {gradInput, gradWeight, gradBias, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor()};
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
  if (input.dim() < 2 || input.size(1) != options_.numFeatures)
    throw std::invalid_argument("SyncBatchNorm: expected input [N, " +
                                std::to_string(options_.numFeatures) + ", ...], got " +
                                std::to_string(input.dim()) + "-d input " +
                                c10::str(input.sizes()));
  if (is_training() && num_batches_tracked.defined()) {
    c10::NoGradGuard noGrad;
    num_batches_tracked.add_(1);
  }
  // With a communicator of any size - world size 1 included - training takes the synchronised
  // path, so one rank and N ranks compute BatchNorm the same way. The native kernel differs from
  // it by ~1e-5 relative per step in libtorch 2.6, which made a 1-rank run drift from a 2-rank
  // run of the same global batch (docs/distributed.md).
  if (is_training() && comm_) return input.is_cuda() ? trainCuda(input) : trainCpu(input);
  // torch's BatchNorm. Mixed precision: CUDA takes fp16/bf16 input with float32 parameters as it
  // is; libtorch 1.13's CPU kernel wants one dtype, so there the input is normalised in float32
  // and handed back at its own precision.
  const bool useBatchStats = is_training() || !running_mean.defined();
  const at::ScalarType in = input.scalar_type();
  const at::Tensor x = half(in) && !input.is_cuda() ? input.to(at::kFloat) : input;
  at::Tensor out = at::batch_norm(x, weight, bias, running_mean, running_var, useBatchStats,
                                  options_.momentum, options_.eps, at::globalContext().userEnabledCuDNN());
  return out.scalar_type() == in ? out : out.to(in);
}

double SyncBatchNormImpl::scopedCount(const at::Tensor& input) const {
  const std::vector<int64_t>* samples = GlobalBatchScope::current();
  if (!samples || static_cast<int>(samples->size()) != comm_->size() ||
      (*samples)[static_cast<size_t>(comm_->rank())] != input.size(0))
    return -1;
  int64_t spatial = 1, total = 0;
  for (int64_t d = 2; d < input.dim(); ++d) spatial *= input.size(d);
  for (int64_t n : *samples) total += n;
  return static_cast<double>(total * spatial);
}

// GCC 13/14 flag std::vector<bool>::reserve inlined from libtorch's Function::apply
// (custom_function.h) with a false -Warray-bounds / -Wstringop-overflow (GCC bug 107852);
// nothing of ours is involved.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 13
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

at::Tensor SyncBatchNormImpl::trainCpu(const at::Tensor& input) {
  // Mixed precision (bf16 autocast on the CPU): statistics, running buffers and the affine
  // transform in float32 or better, the next layer gets the input's precision.
  const at::ScalarType in = input.scalar_type();
  const at::Tensor x = half(in) ? input.to(at::kFloat) : input;
  const int64_t channels = options_.numFeatures;
  double count = scopedCount(x);
  if (count >= 0 && count <= 1) tooFewValues(static_cast<int64_t>(count));  // every rank alike
  at::Tensor mean, invstd;
  {
    c10::NoGradGuard noGrad;
    auto [sum, sumSq] = bn::channelSums(x.detach());
    at::Tensor packed =
        at::cat({sum, sumSq, at::full({1}, static_cast<double>(x.numel() / channels), sum.options())});
    comm_->declareDeviceTensor(packed);
    // One fused all-reduce per SyncBatchNorm layer per training forward, in forward order: the
    // same on every rank running the same model, including ranks with zero samples.
    if (comm_->size() > 1) comm_->allReduce(packed, ReduceOp::Sum);
    if (count < 0) {  // no scope: the reduced count (host memory: no device sync)
      count = packed[2 * channels].item<double>();
      if (count <= 1) tooFewValues(static_cast<int64_t>(count));
    }
    mean = packed.narrow(0, 0, channels) / count;
    // E[x^2] - E[x]^2 in float64 over sums that kept their digits (BatchNormKernels.h); clamped
    // because rounding can make it slightly negative.
    const at::Tensor var = (packed.narrow(0, channels, channels) / count - mean * mean).clamp_min(0);
    if (running_mean.defined()) {
      const double m = options_.momentum;
      running_mean.mul_(1 - m).add_(mean.to(running_mean.scalar_type()), m);
      running_var.mul_(1 - m).add_((var * (count / (count - 1))).to(running_var.scalar_type()), m);
    }
    invstd = (var + options_.eps).rsqrt();
  }
  at::Tensor out = CpuFunction::apply(x, weight, bias, mean, invstd, count, commValue(comm_));
  return out.scalar_type() == in ? out : out.to(in);
}

at::Tensor SyncBatchNormImpl::trainCuda(const at::Tensor& input) {
  // As torch.nn.SyncBatchNorm: channels_last stays channels_last, other layouts are made
  // contiguous; fp16/bf16 input goes to the kernels as it is (statistics in float32).
  const at::Tensor x = input.is_contiguous() || input.is_contiguous(at::MemoryFormat::ChannelsLast)
                           ? input
                           : input.contiguous();
  const int64_t channels = options_.numFeatures;
  const double scoped = scopedCount(x);
  if (scoped >= 0 && scoped <= 1) tooFewValues(static_cast<int64_t>(scoped));
  at::Tensor mean, invstd, counts;
  {
    c10::NoGradGuard noGrad;
    at::Tensor combined;
    if (x.numel() > 0) {
      auto [localMean, localInvstd] = at::batch_norm_stats(x, options_.eps);
      combined = at::cat({localMean, localInvstd,
                          at::full({1}, static_cast<double>(x.numel() / channels), localMean.options())});
    } else {  // a rank with no samples still takes part in the collective, with a zero count
      combined = at::zeros({2 * channels + 1}, x.options().dtype(at::kFloat));
    }
    comm_->declareDeviceTensor(combined);
    // One all-gather per layer per training forward, in forward order, on every rank.
    at::Tensor all = comm_->size() > 1 ? comm_->allGather(combined) : combined.unsqueeze(0);
    // batch_norm_gather_stats_with_counts turns a zero count into NaN: ranks without samples are
    // left out. The scope says which they are; without one the counts are read back (a device
    // sync per layer, as torch.nn.SyncBatchNorm does every forward).
    const std::vector<int64_t>* samples = scoped >= 0 ? GlobalBatchScope::current() : nullptr;
    std::vector<int64_t> keep;
    if (samples) {
      for (size_t r = 0; r < samples->size(); ++r)
        if ((*samples)[r] > 0) keep.push_back(static_cast<int64_t>(r));
    } else {
      const at::Tensor n = all.select(1, 2 * channels).to(at::kCPU, at::kDouble).contiguous();
      double total = 0;
      for (int64_t r = 0; r < n.numel(); ++r) {
        const double v = n.data_ptr<double>()[r];
        total += v;
        if (v >= 1) keep.push_back(r);
      }
      if (total <= 1) tooFewValues(static_cast<int64_t>(total));
    }
    if (static_cast<int64_t>(keep.size()) < all.size(0))
      all = all.index_select(0, at::tensor(keep, at::kLong).to(all.device()));
    counts = all.select(1, 2 * channels);
    std::tie(mean, invstd) = at::batch_norm_gather_stats_with_counts(
        x, all.narrow(1, 0, channels), all.narrow(1, channels, channels), running_mean, running_var,
        options_.momentum, options_.eps, counts);
  }
  return CudaFunction::apply(x, weight, bias, mean, invstd, counts.to(at::kInt), options_.eps,
                             commValue(comm_));
}

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 13
#pragma GCC diagnostic pop
#endif

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
