// GradSync: bucketed, backward-overlapped gradient averaging (the DDP reducer, minus the parts
// slidetrain does not need: no sparse gradients, no graph-dependent unused-parameter search).
#include "distributed/GradSync.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cstdio>
#include <mutex>

#include "distributed/Check.h"

namespace slidetrain::dist {
namespace {

/// FNV-1a over each tensor's dtype and shape: equal on two ranks iff (almost surely) the models
/// have the same parameters in the same order.
uint64_t signature(const std::vector<at::Tensor>& ts) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](int64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= static_cast<uint64_t>(v >> (8 * i)) & 0xFF;
      h *= 1099511628211ULL;
    }
  };
  for (const auto& t : ts) {
    mix(static_cast<int64_t>(t.scalar_type()));
    mix(t.dim());
    for (int64_t s : t.sizes()) mix(s);
  }
  return h;
}

}  // namespace

void GradSyncOptions::validate() const {
  if (!(bucketCapMB > 0) || !(firstBucketCapMB > 0))
    throw std::invalid_argument("GradSyncOptions: bucketCapMB and firstBucketCapMB must be > 0");
  if (compression != "none" && compression != "fp16" && compression != "bf16")
    throw std::invalid_argument("GradSyncOptions.compression: expected none, fp16 or bf16, got \"" +
                                compression + "\"");
}

struct GradSync::Impl {
  struct Slot {
    at::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;
    unsigned hook = 0;
    bool ready = false;
  };
  struct Bucket {
    std::vector<size_t> slots;
    at::Tensor flat;
    size_t pending = 0;
    std::shared_ptr<Work> work;
  };

  std::shared_ptr<Comm> comm;
  GradSyncOptions options;
  torch::nn::Module* module = nullptr;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  size_t nextLaunch = 0;
  bool syncEnabled = true;
  std::mutex mu;

  at::Tensor sliceOf(const Slot& s) const {
    return buckets[s.bucket].flat.narrow(0, s.offset, s.param.numel()).view(s.param.sizes());
  }

  /// Launches every consecutive complete bucket. Buckets start strictly in bucket order, which
  /// is fixed at construction, so the all-reduces are issued in the same order on every rank
  /// whatever order autograd produces gradients in.
  void launchReady() {
    while (nextLaunch < buckets.size() && buckets[nextLaunch].pending == 0) {
      Bucket& b = buckets[nextLaunch++];
      b.work = comm->allReduceAsync(b.flat, ReduceOp::Avg);
    }
  }

  /// Autograd hook: runs when this parameter's gradient for the current backward is known and
  /// before AccumulateGrad adds it to .grad(), so an earlier accumulated .grad() (from
  /// micro-batches run with sync disabled) is added here.
  void onGrad(size_t index, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    if (!syncEnabled) return;
    Slot& s = slots[index];
    if (s.ready)
      throw DistError(detail::rankHost() + ": GradSync: a parameter got a second gradient before "
                      "finalize(). HINT: call finalize() after every synchronised backward, and "
                      "setSyncEnabled(false) for accumulation micro-batches");
    if (grad.is_sparse())
      throw DistError(detail::rankHost() + ": GradSync does not support sparse gradients");
    at::Tensor dst = sliceOf(s);
    dst.copy_(grad);
    const at::Tensor& accumulated = s.param.grad();
    if (accumulated.defined()) dst.add_(accumulated);
    s.ready = true;
    if (--buckets[s.bucket].pending == 0) launchReady();
    // Nonblocking MPI collectives progress only inside MPI calls; testing here lets earlier
    // buckets move while backward computes the rest.
    for (size_t b = 0; b < nextLaunch; ++b)
      if (buckets[b].work) buckets[b].work->isCompleted();
  }

  void buildBuckets() {
    const bool cudaParams = !slots.empty() && slots.front().param.is_cuda();
    at::ScalarType wire = at::kFloat;
    bool compress = options.compression != "none";
    if (compress && !cudaParams) {
      // MPI has no half types (MpiComm would widen to float32 again), so it would only lose
      // precision. Said once, not per step.
      std::fprintf(stderr, "%s: GradSync: compression \"%s\" ignored for CPU parameters\n",
                   detail::rankHost().c_str(), options.compression.c_str());
      compress = false;
    }
    if (compress) wire = options.compression == "fp16" ? at::kHalf : at::kBFloat16;

    // Reverse registration order approximates the order backward produces gradients in (last
    // layers first), so the first bucket is ready early; it is small so communication starts
    // soon.
    std::vector<std::vector<size_t>> groups;
    double capBytes = options.firstBucketCapMB * 1024 * 1024, bytes = 0;
    for (size_t k = slots.size(); k-- > 0;) {
      const at::Tensor& p = slots[k].param;
      const double pb = static_cast<double>(p.numel() * p.element_size());
      bool fresh = groups.empty() || bytes + pb > capBytes;
      if (!fresh) {
        const at::Tensor& q = slots[groups.back().front()].param;
        fresh = q.scalar_type() != p.scalar_type() || q.device() != p.device();
      }
      if (fresh) {
        if (!groups.empty()) capBytes = options.bucketCapMB * 1024 * 1024;
        groups.emplace_back();
        bytes = 0;
      }
      groups.back().push_back(k);
      bytes += pb;
    }
    for (auto& g : groups) {
      Bucket b;
      int64_t n = 0;
      for (size_t k : g) {
        slots[k].bucket = buckets.size();
        slots[k].offset = n;
        n += slots[k].param.numel();
      }
      const at::Tensor& p0 = slots[g.front()].param;
      const at::ScalarType dtype =
          compress && at::isFloatingType(p0.scalar_type()) ? wire : p0.scalar_type();
      b.flat = at::zeros({n}, p0.options().dtype(dtype));
      b.slots = std::move(g);
      b.pending = b.slots.size();
      buckets.push_back(std::move(b));
    }
  }
};

GradSync::GradSync(std::shared_ptr<Comm> comm, torch::nn::Module& module, GradSyncOptions options)
    : impl_(std::make_unique<Impl>()) {
  options.validate();
  if (!comm) throw DistError("GradSync: no communicator");
  impl_->comm = std::move(comm);
  impl_->options = options;
  impl_->module = &module;
  std::vector<at::Tensor> params, all;
  for (const auto& p : module.parameters())
    if (p.defined() && p.requires_grad()) params.push_back(p);
  all = params;
  for (const auto& b : module.buffers())
    if (b.defined()) all.push_back(b);

  // Same model everywhere? A mismatch would otherwise show up as a hang or as garbage
  // gradients far from its cause. Collective #1 of GradSync's construction (every rank).
  at::Tensor mine = at::tensor({static_cast<int64_t>(params.size()), static_cast<int64_t>(all.size()),
                                static_cast<int64_t>(signature(all))}, at::kLong);
  const at::Tensor everyone = impl_->comm->allGather(mine).to(at::kCPU);
  for (int r = 1; r < impl_->comm->size(); ++r) {
    if (!at::equal(everyone[r], everyone[0]))
      throw DistError(detail::rankHost() + ": GradSync: rank " + std::to_string(r) + " has " +
                      std::to_string(everyone[r][0].item<int64_t>()) + " trainable parameters (" +
                      std::to_string(everyone[r][1].item<int64_t>()) +
                      " tensors with buffers) with shape signature " +
                      std::to_string(everyone[r][2].item<int64_t>()) + " but rank 0 has " +
                      std::to_string(everyone[0][0].item<int64_t>()) + " (" +
                      std::to_string(everyone[0][1].item<int64_t>()) + ", " +
                      std::to_string(everyone[0][2].item<int64_t>()) +
                      "). HINT: every rank must build the same model with the same options");
  }
  {
    // Same starting point everywhere: rank 0's weights and buffers, one broadcast per tensor
    // in registration order (the same on every rank, just checked).
    at::NoGradGuard noGrad;
    for (auto& t : all) {
      at::Tensor d = t.detach();
      impl_->comm->broadcast(d, 0);
    }
  }
  for (auto& p : params) {
    Impl::Slot s;
    s.param = p;
    impl_->slots.push_back(s);
  }
  impl_->buildBuckets();
  Impl* raw = impl_.get();
  for (size_t i = 0; i < impl_->slots.size(); ++i)
    impl_->slots[i].hook =
        impl_->slots[i].param.register_hook([raw, i](const at::Tensor& g) { raw->onGrad(i, g); });
}

GradSync::~GradSync() {
  for (auto& s : impl_->slots) s.param.remove_hook(s.hook);
  for (auto& b : impl_->buckets)
    if (b.work) {
      try {
        b.work->wait();  // MPI/NCCL must not write into the freed bucket later
      } catch (...) {
      }
    }
}

void GradSync::setSyncEnabled(bool enabled) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->syncEnabled = enabled;
}

void GradSync::finalize() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& m = *impl_;
  if (!m.syncEnabled) return;
  // Parameters that got no gradient in this backward (unused branch, or a rank that skipped
  // backward) still take part with their accumulated gradient or zeros, so every rank issues
  // every bucket's all-reduce, in bucket order.
  for (auto& s : m.slots) {
    if (s.ready) continue;
    at::Tensor dst = m.sliceOf(s);
    if (s.param.grad().defined())
      dst.copy_(s.param.grad());
    else
      dst.zero_();
    s.ready = true;
    --m.buckets[s.bucket].pending;
  }
  m.launchReady();
  for (auto& b : m.buckets) b.work->wait();  // already averaged: one division per bucket
  for (auto& s : m.slots) {
    const at::Tensor avg = m.sliceOf(s);
    at::Tensor& g = s.param.mutable_grad();
    if (g.defined())
      g.copy_(avg);
    else
      g = avg.to(s.param.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
    s.ready = false;
  }
  for (auto& b : m.buckets) {
    b.pending = b.slots.size();
    b.work.reset();
  }
  m.nextLaunch = 0;
}

void GradSync::broadcastBuffers() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  at::NoGradGuard noGrad;
  // Registration order: the same on every rank (checked at construction).
  for (const auto& b : impl_->module->buffers()) {
    if (!b.defined()) continue;
    at::Tensor d = b.detach();
    impl_->comm->broadcast(d, 0);
  }
}

size_t GradSync::numBuckets() const { return impl_->buckets.size(); }

}  // namespace slidetrain::dist
