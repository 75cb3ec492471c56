// NcclComm: ncclComm_t + private stream + watchdog. See NcclComm.h for the contract.
#include "distributed/NcclComm.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <ATen/ATen.h>

#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include "distributed/Check.h"
#include "distributed/MpiComm.h"

namespace slidetrain::dist {
namespace {

std::string ncclVersionText() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL ?";
  // Since 2.9 the code is major*10000 + minor*100 + patch; before, major*1000 + minor*100 +
  // patch (nccl.h's NCCL_VERSION macro). Runtime and header versions can differ.
  if (v < 10000)
    return "NCCL " + std::to_string(v / 1000) + "." + std::to_string(v / 100 % 10) + "." +
           std::to_string(v % 100);
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100);
}

}  // namespace
}  // namespace slidetrain::dist

/// Throws DistError "rank R@host file:line: call failed: <ncclGetErrorString> (NCCL x.y.z)".
#define SLIDETRAIN_NCCL_CHECK(call)                                                        \
  do {                                                                                     \
    ncclResult_t slidetrainNcclRc_ = (call);                                               \
    if (slidetrainNcclRc_ != ncclSuccess)                                                  \
      ::slidetrain::dist::detail::throwCallError(                                          \
          __FILE__, __LINE__, #call,                                                       \
          std::string(ncclGetErrorString(slidetrainNcclRc_)) + " (" +                      \
              ::slidetrain::dist::ncclVersionText() + ")");                                \
  } while (0)

#define SLIDETRAIN_CUDA_CHECK(call)                                                        \
  do {                                                                                     \
    cudaError_t slidetrainCudaRc_ = (call);                                                \
    if (slidetrainCudaRc_ != cudaSuccess)                                                  \
      ::slidetrain::dist::detail::throwCallError(__FILE__, __LINE__, #call,                \
                                                 cudaGetErrorString(slidetrainCudaRc_));   \
  } while (0)

namespace slidetrain::dist {
namespace {

ncclDataType_t ncclType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
    case at::kBFloat16: return ncclBfloat16;  // NCCL >= 2.10
#endif
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kByte: return ncclUint8;
    case at::kChar: return ncclInt8;
    default:
      throw DistError(detail::rankHost() + ": NcclComm does not support dtype " +
                      std::string(c10::toString(t)));
  }
}

ncclRedOp_t ncclOp(ReduceOp op, at::ScalarType t) {
  switch (op) {
    case ReduceOp::Sum: return ncclSum;
    case ReduceOp::Max: return ncclMax;
    case ReduceOp::Min: return ncclMin;
    case ReduceOp::Avg:
      if (!at::isFloatingType(t))
        throw DistError(detail::rankHost() +
                        ": NcclComm Avg is for floating tensors; reduce integers with Sum");
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 10, 0)
      return ncclAvg;  // fused: NCCL divides while reducing (ncclAvg exists since NCCL 2.10)
#else
      throw DistError(detail::rankHost() + ": NcclComm Avg needs NCCL >= 2.10 (ncclAvg); this "
                      "build has " + std::to_string(NCCL_VERSION_CODE) + ". Reduce with Sum and "
                      "divide, or upgrade NCCL");
#endif
  }
  return ncclSum;
}

void checkCuda(const at::Tensor& t, const char* what) {
  if (!t.is_cuda())
    throw DistError(detail::rankHost() + ": NcclComm::" + what +
                    " needs a CUDA tensor; use backend \"mpi\" for CPU tensors");
  if (!t.is_contiguous())
    throw DistError(detail::rankHost() + ": NcclComm::" + what + " needs a contiguous tensor");
}

// The stream libtorch (and most CUDA code) computes on unless told otherwise. A CUDA build of
// libtorch would use c10::cuda::getCurrentCUDAStream(); the Debian libtorch has no CUDA.
const cudaStream_t kComputeStream = cudaStreamLegacy;

}  // namespace

class NcclWork;

struct NcclComm::Impl {
  /// Atomic: the watchdog thread and a timed-out wait() may both abort it (exactly one does).
  std::atomic<ncclComm_t> comm{nullptr};
  cudaStream_t stream = nullptr;
  int rank = 0, size = 1, device = 0;
  CommOptions options;
  uint64_t seq = 0;

  // Watchdog: aborts the job when an issued collective has not finished within the timeout,
  // even if nobody waits on it (a rank stuck in data loading would otherwise hang the rest).
  struct Pending {
    cudaEvent_t done;
    std::chrono::steady_clock::time_point start;
    std::string what;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::list<Pending> pending;
  bool stop = false;
  std::thread watchdog;

  /// ncclCommAbort is the documented way to unblock a communicator stuck on a dead peer, and
  /// (like ncclCommGetAsyncError) may be called from another thread than the one launching.
  void abortComm() noexcept {
    if (ncclComm_t c = comm.exchange(nullptr)) ncclCommAbort(c);
  }

  void watch() {
    cudaSetDevice(device);
    std::unique_lock<std::mutex> lock(mu);
    const auto tick = std::min<std::chrono::milliseconds>(options.timeout / 4,
                                                          std::chrono::milliseconds(1000));
    while (!stop) {
      cv.wait_for(lock, tick);
      ncclResult_t async = ncclSuccess;
      ncclComm_t c = comm.load();
      if (c && ncclCommGetAsyncError(c, &async) == ncclSuccess && async != ncclSuccess) {
        const std::string why = ncclGetErrorString(async);
        abortComm();
        abortJob("NCCL asynchronous error: " + why + " (" + ncclVersionText() + ")");
      }
      const auto now = std::chrono::steady_clock::now();
      for (auto it = pending.begin(); it != pending.end();) {
        if (*it->finished || cudaEventQuery(it->done) == cudaSuccess) {
          it = pending.erase(it);
          continue;
        }
        if (now - it->start > options.timeout) {
          abortComm();
          abortJob(it->what + " timed out after " +
                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                      options.timeout).count()) +
                   "s (a peer rank is dead or stuck); NCCL communicator aborted");
        }
        ++it;
      }
    }
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv.notify_all();
    if (watchdog.joinable()) watchdog.join();
    if (ncclComm_t c = comm.exchange(nullptr)) {
      ncclResult_t async = ncclSuccess;
      if (ncclCommGetAsyncError(c, &async) != ncclSuccess || async != ncclSuccess)
        ncclCommAbort(c);  // destroy would block on a broken communicator
      else
        ncclCommDestroy(c);
    }
    if (stream) cudaStreamDestroy(stream);
  }
};

/// An issued NCCL collective: `done` is recorded on the NCCL stream after it.
class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<NcclComm::Impl> impl, std::vector<at::Tensor> keep, cudaEvent_t done,
           std::string what)
      : impl_(std::move(impl)), keep_(std::move(keep)), done_(done), what_(std::move(what)),
        finished_(std::make_shared<std::atomic<bool>>(false)) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->pending.push_back({done_, std::chrono::steady_clock::now(), what_, finished_});
  }
  ~NcclWork() override {
    // Abandoning an in-flight collective would free `keep_` (cudaFree) while NCCL still writes
    // into it; wait (with the timeout, which aborts the job) as MpiComm's Work does.
    if (!*finished_) {
      try {
        wait();
      } catch (...) {
      }
    }
    *finished_ = true;
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->pending.remove_if([this](const NcclComm::Impl::Pending& p) { return p.done == done_; });
    cudaEventDestroy(done_);
  }

  bool isCompleted() override {
    const cudaError_t rc = cudaEventQuery(done_);
    if (rc == cudaErrorNotReady) return false;
    SLIDETRAIN_CUDA_CHECK(rc);
    return true;
  }

  void wait() override {
    detail::pollWithTimeout([this] { return isCompleted(); }, what_,
                            impl_->options.timeout, [this] { impl_->abortComm(); });
    // Later compute work sees the result (already true here since we waited on the host, but
    // it keeps the stream order explicit for when wait() becomes device-side).
    SLIDETRAIN_CUDA_CHECK(cudaStreamWaitEvent(kComputeStream, done_, 0));
    *finished_ = true;
  }

 private:
  std::shared_ptr<NcclComm::Impl> impl_;
  std::vector<at::Tensor> keep_;  // tensors NCCL reads/writes stay alive until completion
  cudaEvent_t done_;
  std::string what_;
  std::shared_ptr<std::atomic<bool>> finished_;
};

namespace {

/// Runs `launch` on the NCCL stream between two events: the stream first waits for work already
/// queued on the compute stream (the producer of the input), then records `done`.
template <typename F>
std::shared_ptr<NcclWork> enqueue(const std::shared_ptr<NcclComm::Impl>& impl,
                                  std::vector<at::Tensor> keep, const std::string& what,
                                  F&& launch) {
  if (!impl->comm.load())
    throw DistError(detail::rankHost() + ": NCCL communicator was aborted");
  SLIDETRAIN_CUDA_CHECK(cudaSetDevice(impl->device));
  cudaEvent_t ready = nullptr, done = nullptr;
  SLIDETRAIN_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  SLIDETRAIN_CUDA_CHECK(cudaEventRecord(ready, kComputeStream));
  SLIDETRAIN_CUDA_CHECK(cudaStreamWaitEvent(impl->stream, ready, 0));
  cudaEventDestroy(ready);  // safe: destruction is deferred until the event completes
  launch();
  SLIDETRAIN_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  SLIDETRAIN_CUDA_CHECK(cudaEventRecord(done, impl->stream));
  return std::make_shared<NcclWork>(impl, std::move(keep), done, what);
}

std::string describe(const char* name, uint64_t seq, const at::Tensor& t) {
  return std::string(name) + " #" + std::to_string(seq) + " (nccl, " +
         c10::toString(t.scalar_type()) + ", " + std::to_string(t.numel()) + " elements)";
}

}  // namespace

int cudaDeviceCountOrZero(std::string* why) {
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    if (why) *why = cudaGetErrorString(rc);
    cudaGetLastError();  // clear the sticky error so later CUDA calls are not poisoned
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device visible";
  return n;
}

at::Tensor copyToCudaDevice(const at::Tensor& cpu, int device) {
  const at::Tensor src = cpu.contiguous();
  SLIDETRAIN_CUDA_CHECK(cudaSetDevice(device));
  void* p = nullptr;
  SLIDETRAIN_CUDA_CHECK(cudaMalloc(&p, src.nbytes() + 1));
  at::Tensor t = at::for_blob(p, src.sizes())
                     .options(src.options())
                     .target_device(at::Device(at::kCUDA, device))
                     .deleter([](void* q) { cudaFree(q); })
                     .make_tensor();
  SLIDETRAIN_CUDA_CHECK(cudaMemcpy(p, src.data_ptr(), src.nbytes(), cudaMemcpyHostToDevice));
  return t;
}

at::Tensor copyToHost(const at::Tensor& cuda) {
  at::Tensor out = at::empty(cuda.sizes(), cuda.options().device(at::kCPU));
  SLIDETRAIN_CUDA_CHECK(cudaDeviceSynchronize());
  SLIDETRAIN_CUDA_CHECK(
      cudaMemcpy(out.data_ptr(), cuda.data_ptr(), out.nbytes(), cudaMemcpyDeviceToHost));
  return out;
}

NcclComm::NcclComm(CommOptions options, int device) : impl_(std::make_shared<Impl>()) {
  ensureMpiInitialized();
  impl_->options = options;
  impl_->rank = worldRank();
  impl_->size = worldSize();
  std::string why;
  const int count = cudaDeviceCountOrZero(&why);
  if (count == 0)
    throw DistError(detail::rankHost() + ": NcclComm needs a CUDA device (" + why +
                    "). HINT: use backend \"mpi\" on CPU-only nodes");
  impl_->device = device >= 0 ? device : localRank() % count;
  SLIDETRAIN_CUDA_CHECK(cudaSetDevice(impl_->device));
  ncclUniqueId id;
  if (impl_->rank == 0) SLIDETRAIN_NCCL_CHECK(ncclGetUniqueId(&id));
  {
    // Both calls block until every rank arrives; a rank that never does must end the job, not
    // hang it (the watchdog fires after the timeout).
    detail::Deadline deadline("NcclComm construction (MPI_Bcast of the ncclUniqueId, "
                              "ncclCommInitRank)", options.timeout);
    // Collective over MPI_COMM_WORLD, in the same order on every rank: NcclComm construction.
    SLIDETRAIN_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD));
    ncclComm_t c = nullptr;
    // One device per rank: two ranks of a node on the same GPU fail here (NCCL "invalid usage").
    SLIDETRAIN_NCCL_CHECK(ncclCommInitRank(&c, impl_->size, id, impl_->rank));
    impl_->comm = c;
  }
  // Non-blocking: must not synchronise with the legacy default stream implicitly; ordering is
  // explicit through events.
  SLIDETRAIN_CUDA_CHECK(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking));
  Impl* raw = impl_.get();
  impl_->watchdog = std::thread([raw] { raw->watch(); });
}

NcclComm::~NcclComm() = default;
NcclComm::NcclComm(NcclComm&&) noexcept = default;
NcclComm& NcclComm::operator=(NcclComm&&) noexcept = default;

int NcclComm::rank() const { return impl_->rank; }
int NcclComm::size() const { return impl_->size; }
int NcclComm::device() const { return impl_->device; }

std::shared_ptr<Work> NcclComm::allReduceAsync(at::Tensor t, ReduceOp op) {
  checkCuda(t, "allReduce");
  const ncclDataType_t type = ncclType(t.scalar_type());
  const ncclRedOp_t nop = ncclOp(op, t.scalar_type());
  const std::string what = describe("allReduce", impl_->seq++, t);
  return enqueue(impl_, {t}, what, [&] {
    // A single collective needs no ncclGroupStart/End (those batch several into one launch).
    SLIDETRAIN_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), type, nop,
                                        impl_->comm.load(), impl_->stream));
  });
}

void NcclComm::allReduce(at::Tensor& t, ReduceOp op) { allReduceAsync(t, op)->wait(); }

void NcclComm::broadcast(at::Tensor& t, int root) {
  checkCuda(t, "broadcast");
  const ncclDataType_t type = ncclType(t.scalar_type());
  const std::string what = describe("broadcast", impl_->seq++, t);
  enqueue(impl_, {t}, what, [&] {
    SLIDETRAIN_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), type, root,
                                        impl_->comm.load(), impl_->stream));
  })->wait();
}

at::Tensor NcclComm::allGather(const at::Tensor& t) {
  checkCuda(t, "allGather");
  const ncclDataType_t type = ncclType(t.scalar_type());
  std::vector<int64_t> shape{impl_->size};
  shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
  void* out = nullptr;
  SLIDETRAIN_CUDA_CHECK(cudaMalloc(&out, t.nbytes() * impl_->size + 1));
  // cudaMalloc + from_blob: works with a CPU-only libtorch, which has no CUDA allocator.
  at::Tensor result = at::for_blob(out, shape)
                          .options(t.options())
                          .target_device(t.device())
                          .deleter([](void* p) { cudaFree(p); })
                          .make_tensor();
  const std::string what = describe("allGather", impl_->seq++, t);
  enqueue(impl_, {t, result}, what, [&] {
    SLIDETRAIN_NCCL_CHECK(ncclAllGather(t.data_ptr(), out, t.numel(), type, impl_->comm.load(),
                                        impl_->stream));
  })->wait();
  return result;
}

void NcclComm::barrier() {
  // An all-reduce of one byte on the NCCL stream: completes only when every rank got here.
  void* one = nullptr;
  SLIDETRAIN_CUDA_CHECK(cudaSetDevice(impl_->device));
  SLIDETRAIN_CUDA_CHECK(cudaMalloc(&one, 1));
  at::Tensor t = at::for_blob(one, {1})
                     .options(at::TensorOptions().dtype(at::kByte))
                     .target_device(at::Device(at::kCUDA, impl_->device))
                     .deleter([](void* p) { cudaFree(p); })
                     .make_tensor();
  const std::string what = "barrier #" + std::to_string(impl_->seq++) + " (nccl)";
  enqueue(impl_, {t}, what, [&] {
    SLIDETRAIN_NCCL_CHECK(ncclAllReduce(one, one, 1, ncclUint8, ncclSum, impl_->comm.load(),
                                        impl_->stream));
  })->wait();
}

}  // namespace slidetrain::dist
