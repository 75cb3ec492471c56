// GradSync: bucketed, backward-overlapped gradient averaging (the DDP reducer, minus the parts
// slidetrain does not need: no sparse gradients, no graph-dependent unused-parameter search).
//
// Gradients as bucket views (PyTorch DDP's gradient_as_bucket_view): after the first synced
// step each parameter's .grad() aliases its slice of the bucket's flat buffer. AccumulateGrad
// then accumulates straight into the bucket, a hook on the AccumulateGrad node (it runs after
// the accumulation) marks the parameter ready, and finalize() divides the reduced bucket in
// place: no copy into and none out of the buckets in the steady state. A tensor hook (it runs
// before AccumulateGrad) only rejects a second gradient while the bucket may be in flight.
#include "distributed/GradSync.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
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
    /// The AccumulateGrad node (kept alive: the parameter holds it weakly, and a new node
    /// would not carry our hook) and the key of our post hook on it.
    std::shared_ptr<torch::autograd::Node> accumulator;
    uintptr_t postHook = 0;
    /// .grad() as an alias of the bucket slice (a plain tensor over the bucket's storage, not
    /// an autograd view: Optimizer::zero_grad() calls detach_(), which views reject).
    /// Undefined when the bucket's dtype differs (compression): then gradients are copied.
    at::Tensor gradView;
    bool ready = false;
  };
  struct Bucket {
    std::vector<size_t> slots;
    at::Tensor flat;
    size_t pending = 0;
    std::shared_ptr<Work> work;
  };

  std::shared_ptr<Comm> comm;  ///< the device plane: buckets, parameters, buffers
  std::shared_ptr<Comm> host;  ///< the host plane: the shape signature
  GradSyncOptions options;
  torch::nn::Module* module = nullptr;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  size_t nextLaunch = 0;
  bool syncEnabled = true;
  /// Buckets at the parameters' precision are all-reduced with Sum and divided in place by
  /// finalize() (bucket b is divided while b+1 is still on the wire). Compressed (half) buckets
  /// use Avg on the wire, so a half-precision sum cannot overflow where the mean would not, and
  /// are copied back into .grad().
  bool sumOnWire = true;
  std::mutex mu;

  at::Tensor sliceOf(const Slot& s) const {
    return buckets[s.bucket].flat.narrow(0, s.offset, s.param.numel()).view(s.param.sizes());
  }
  bool aliased(const Slot& s) const {
    return s.gradView.defined() && s.param.grad().defined() && s.param.grad().is_same(s.gradView);
  }

  /// Launches every consecutive complete bucket. Buckets start strictly in bucket order, which
  /// is fixed at construction, so the all-reduces are issued in the same order on every rank
  /// whatever order autograd produces gradients in (MpiComm's communication thread runs them
  /// in that FIFO order).
  void launchReady() {
    while (nextLaunch < buckets.size() && buckets[nextLaunch].pending == 0) {
      Bucket& b = buckets[nextLaunch++];
      b.work = comm->allReduceAsync(b.flat, sumOnWire ? ReduceOp::Sum : ReduceOp::Avg);
    }
  }

  /// Tensor hook: runs before AccumulateGrad touches .grad(). With .grad() aliasing a bucket
  /// that may be on the wire, a second gradient must be refused before it is accumulated.
  void onGradIncoming(size_t index, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mu);
    if (!syncEnabled) return;
    if (slots[index].ready)
      throw DistError(detail::rankHost() + ": GradSync: a parameter got a second gradient before "
                      "finalize(). HINT: call finalize() after every synchronised backward, and "
                      "setSyncEnabled(false) for accumulation micro-batches");
    if (grad.is_sparse())
      throw DistError(detail::rankHost() + ": GradSync does not support sparse gradients");
  }

  /// Stores the parameter's gradient in its bucket slice, unless .grad() already is that slice.
  void gather(Slot& s) {
    if (aliased(s)) return;  // AccumulateGrad accumulated in place, into the bucket
    // Through the view itself when there is one: its strides are the parameter's (channels_last).
    at::Tensor dst = s.gradView.defined() ? s.gradView : sliceOf(s);
    const at::Tensor& g = s.param.grad();
    if (g.defined())
      dst.copy_(g);
    else
      dst.zero_();
    if (s.gradView.defined()) s.param.mutable_grad() = s.gradView;  // from now on, in place
  }

  /// Post hook of the parameter's AccumulateGrad: .grad() now holds this backward's gradient
  /// plus whatever earlier micro-batches (sync disabled) accumulated.
  void onGradAccumulated(size_t index) {
    std::lock_guard<std::mutex> lock(mu);
    if (!syncEnabled) return;
    Slot& s = slots[index];
    if (s.ready) return;  // refused by onGradIncoming already
    c10::NoGradGuard noGrad;
    gather(s);
    s.ready = true;
    if (--buckets[s.bucket].pending == 0) launchReady();
    // The polled path (MPI without MPI_THREAD_MULTIPLE, or CommOptions::commThread false):
    // nonblocking MPI collectives progress only inside MPI calls, so testing here lets earlier
    // buckets move while backward computes the rest. With the communication thread (or NCCL)
    // isCompleted() is a flag check.
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
    sumOnWire = !compress;

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
      comm->declareDeviceTensor(b.flat);
      for (size_t k : g) {
        Slot& s = slots[k];
        if (dtype != s.param.scalar_type()) continue;
        // The parameter's own layout (channels_last weights get channels_last gradients, as
        // DDP's bucket views), else row-major.
        std::vector<int64_t> strides(static_cast<size_t>(s.param.dim()));
        if (s.param.is_non_overlapping_and_dense()) {
          strides.assign(s.param.strides().begin(), s.param.strides().end());
        } else {
          int64_t stride = 1;
          for (int64_t d = s.param.dim(); d-- > 0;) {
            strides[static_cast<size_t>(d)] = stride;
            stride *= std::max<int64_t>(1, s.param.size(d));
          }
        }
        at::Tensor v = at::empty({0}, b.flat.options());
        v.set_(b.flat.storage(), b.flat.storage_offset() + s.offset, s.param.sizes(), strides);
        s.gradView = v;
      }
      b.slots = std::move(g);
      b.pending = b.slots.size();
      buckets.push_back(std::move(b));
    }
  }
};

GradSync::GradSync(Planes planes, torch::nn::Module& module, GradSyncOptions options)
    : impl_(std::make_unique<Impl>()) {
  options.validate();
  if (!planes.host || !planes.device) throw DistError("GradSync: no communicator");
  impl_->comm = std::move(planes.device);
  impl_->host = std::move(planes.host);
  impl_->options = options;
  impl_->module = &module;
  std::vector<at::Tensor> params, all;
  for (const auto& p : module.parameters())
    if (p.defined() && p.requires_grad()) params.push_back(p);
  all = params;
  for (const auto& b : module.buffers())
    if (b.defined()) all.push_back(b);

  // Same model everywhere? A mismatch would otherwise show up as a hang or as garbage
  // gradients far from its cause. Collective #1 of GradSync's construction (every rank), on the
  // host plane: the signature is computed by the host.
  at::Tensor mine = at::tensor({static_cast<int64_t>(params.size()), static_cast<int64_t>(all.size()),
                                static_cast<int64_t>(signature(all))}, at::kLong);
  const at::Tensor everyone = impl_->host->allGather(mine);
  for (int r = 1; r < impl_->host->size(); ++r) {
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
    // in registration order (the same on every rank, just checked), on the device plane.
    c10::NoGradGuard noGrad;
    for (auto& t : all) {
      at::Tensor d = t.detach();
      impl_->comm->declareDeviceTensor(d);
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
  for (size_t i = 0; i < impl_->slots.size(); ++i) {
    Impl::Slot& s = impl_->slots[i];
    s.hook = s.param.register_hook([raw, i](const at::Tensor& g) { raw->onGradIncoming(i, g); });
    s.accumulator = torch::autograd::impl::grad_accumulator(s.param);
    if (!s.accumulator)
      throw DistError(detail::rankHost() + ": GradSync: parameter " + std::to_string(i) +
                      " has no gradient accumulator (is it a leaf that requires grad?)");
    s.postHook = s.accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [raw, i](const torch::autograd::variable_list& outputs,
                 const torch::autograd::variable_list& /*inputs*/) {
          raw->onGradAccumulated(i);
          return outputs;
        }));
  }
}

GradSync::~GradSync() {
  for (auto& s : impl_->slots) {
    s.param.remove_hook(s.hook);
    if (s.accumulator) s.accumulator->del_post_hook(s.postHook);
  }
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
  c10::NoGradGuard noGrad;
  // Parameters that got no gradient in this backward (unused branch, or a rank that skipped
  // backward) still take part with their accumulated gradient or zeros, so every rank issues
  // every bucket's all-reduce, in bucket order.
  for (auto& s : m.slots) {
    if (s.ready) continue;
    m.gather(s);
    s.ready = true;
    --m.buckets[s.bucket].pending;
  }
  m.launchReady();
  // Buckets complete in launch order (FIFO on one communicator): bucket b is divided (its
  // .grad() views then hold the mean) while bucket b+1 is still being reduced.
  const int n = m.comm->size();
  for (auto& b : m.buckets) {
    b.work->wait();
    if (m.sumOnWire && n > 1) b.flat.div_(n);
    for (size_t k : b.slots) {
      Impl::Slot& s = m.slots[k];
      if (!s.gradView.defined()) {  // compressed bucket: copy back at the parameter's dtype
        const at::Tensor avg = m.sliceOf(s);
        at::Tensor& g = s.param.mutable_grad();
        if (g.defined())
          g.copy_(avg);
        else
          g = avg.to(s.param.scalar_type(), /*non_blocking=*/false, /*copy=*/true);
      }
      s.ready = false;
    }
    b.pending = b.slots.size();
    b.work.reset();
  }
  m.nextLaunch = 0;
}

void GradSync::broadcastBuffers() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  c10::NoGradGuard noGrad;
  // Coalesced, as DDP's broadcast_buffers: one broadcast per dtype (BatchNorm's float statistics,
  // its int64 batch counters), the buffers in registration order - the same on every rank
  // (checked at construction) - so tens of buffers cost two messages per call.
  std::vector<at::Tensor> buffers;
  for (const auto& b : impl_->module->buffers())
    if (b.defined() && b.numel() > 0) buffers.push_back(b.detach());
  std::vector<at::ScalarType> types;
  for (const auto& b : buffers)
    if (std::find(types.begin(), types.end(), b.scalar_type()) == types.end()) types.push_back(b.scalar_type());
  for (at::ScalarType type : types) {
    std::vector<at::Tensor> group;
    for (const auto& b : buffers)
      if (b.scalar_type() == type) group.push_back(b.reshape({-1}));
    at::Tensor flat = at::cat(group);
    impl_->comm->declareDeviceTensor(flat);
    impl_->comm->broadcast(flat, 0);
    int64_t at = 0;
    for (auto& b : buffers) {
      if (b.scalar_type() != type) continue;
      b.copy_(flat.narrow(0, at, b.numel()).view_as(b));
      at += b.numel();
    }
  }
}

size_t GradSync::numBuckets() const { return impl_->buckets.size(); }

std::vector<int64_t> GradSync::bucketElements() const {
  std::vector<int64_t> out;
  for (const auto& b : impl_->buckets) out.push_back(b.flat.numel());
  return out;
}

}  // namespace slidetrain::dist
