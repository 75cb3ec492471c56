// NcclComm: ncclComm_t + private stream + watchdog. See NcclComm.h for the contract; the CUDA
// and NCCL helpers (error checks, dtypes, streams, buffers) are in NcclCuda.h.
#include "distributed/NcclComm.h"

#include <mpi.h>

#include <ATen/ATen.h>
#ifdef SLIDETRAIN_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <atomic>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>

#include "distributed/Check.h"
#include "distributed/Heartbeat.h"
#include "distributed/MpiComm.h"
#include "distributed/NcclCuda.h"

namespace slidetrain::dist {

struct NcclComm::Impl {
  struct Pending;
  /// Atomic: the watchdog thread and a timed-out wait may both abort it (exactly one does).
  std::atomic<ncclComm_t> comm{nullptr};
  cudaStream_t stream = nullptr;  ///< NCCL's own non-blocking stream
  int rank = 0, size = 1, device = 0;
  CommOptions options;
  std::atomic<uint64_t> seq{0};

  // Watchdog: aborts the job when an issued collective has not finished within the timeout,
  // even if nobody waits on it (a rank stuck in data loading would otherwise hang the rest).
  std::mutex mu;
  std::condition_variable cv;
  std::list<std::shared_ptr<Pending>> pending;
  bool stop = false;
  std::thread watchdog;

  /// ncclCommAbort is the documented way to unblock a communicator stuck on a dead peer, and
  /// (like ncclCommGetAsyncError) may be called from another thread than the one launching.
  void abortComm() noexcept;
  void watch();
  ~Impl();
};

/// One issued collective: `done` is recorded on the NCCL stream after it. Shared by the Work
/// handle and the watchdog, so an in-flight collective stays watched after its Work is gone.
struct NcclComm::Impl::Pending {
  cudaEvent_t done = nullptr;
  std::chrono::steady_clock::time_point start;
  std::string what;
  ~Pending() {
    if (done) cudaEventDestroy(done);  // deferred by CUDA until the event completes
  }
  /// cudaSuccess when done, cudaErrorNotReady while running, else this process's CUDA error.
  cudaError_t state() const { return cudaEventQuery(done); }
};

NcclComm::Impl::~Impl() {
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
  pending.clear();
  if (stream) cudaStreamDestroy(stream);
}

void NcclComm::Impl::abortComm() noexcept {
  if (ncclComm_t c = comm.exchange(nullptr)) ncclCommAbort(c);
}

void NcclComm::Impl::watch() {
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
      abortJob("NCCL asynchronous error: " + why + " (" + detail::ncclVersionText() + ")");
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      const cudaError_t rc = (*it)->state();
      if (rc == cudaSuccess) {
        it = pending.erase(it);
        continue;
      }
      if (rc != cudaErrorNotReady) {
        // A fault of this process's device (an illegal address, a failed kernel): say so now,
        // not after the timeout as if a peer had died.
        abortComm();
        abortJob((*it)->what + ": CUDA error on this rank's device " + std::to_string(device) + ": " +
                 cudaGetErrorString(rc) + " (a local fault, not a peer's; NCCL communicator aborted)");
      }
      if (now - (*it)->start > options.timeout) {
        abortComm();
        abortJob((*it)->what + " timed out after " +
                 std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                    options.timeout).count()) +
                 "s (a peer rank is dead or stuck); NCCL communicator aborted" +
                 detail::peerReport());
      }
      ++it;
    }
  }
}

/// Handle of an issued collective. wait() is device-side, as ProcessGroupNCCL's: the calling
/// thread's compute stream waits for the collective's event, the host does not.
class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<NcclComm::Impl> impl, std::shared_ptr<NcclComm::Impl::Pending> p)
      : impl_(std::move(impl)), p_(std::move(p)) {}

  bool isCompleted() override {
    const cudaError_t rc = cudaEventQuery(p_->done);
    if (rc == cudaErrorNotReady) return false;
    SLIDETRAIN_CUDA_CHECK(rc);
    return true;
  }

  void wait() override {
    if (!impl_->comm.load())
      throw DistError(detail::rankHost() + ": " + p_->what + ": NCCL communicator was aborted");
    const detail::CudaDeviceScope onDevice(impl_->device);
    SLIDETRAIN_CUDA_CHECK(cudaStreamWaitEvent(detail::computeStream(impl_->device), p_->done, 0));
  }

  /// Blocks the host until the collective completed (barrier), with the timeout.
  void hostWait() {
    detail::pollWithTimeout([this] { return isCompleted(); }, p_->what, impl_->options.timeout,
                            [this] { impl_->abortComm(); });
  }

 private:
  std::shared_ptr<NcclComm::Impl> impl_;
  std::shared_ptr<NcclComm::Impl::Pending> p_;
};

namespace {

/// Runs `launch` on the NCCL stream between two events: the NCCL stream first waits for the work
/// already queued on the caller's compute stream (the producer of the input; an event, so the
/// compute stream itself goes on), then records `done`. The tensors are recorded as used on the
/// NCCL stream so that the caching allocator does not hand their memory out again before the
/// collective has finished with it, even when the caller drops them at once.
template <typename F>
std::shared_ptr<NcclWork> enqueue(const std::shared_ptr<NcclComm::Impl>& impl,
                                  const std::vector<at::Tensor>& tensors, std::string what,
                                  F&& launch) {
  if (!impl->comm.load())
    throw DistError(detail::rankHost() + ": NCCL communicator was aborted");
  const detail::CudaDeviceScope onDevice(impl->device);
  cudaEvent_t ready = nullptr;
  SLIDETRAIN_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  SLIDETRAIN_CUDA_CHECK(cudaEventRecord(ready, detail::computeStream(impl->device)));
  SLIDETRAIN_CUDA_CHECK(cudaStreamWaitEvent(impl->stream, ready, 0));
  cudaEventDestroy(ready);  // safe: destruction is deferred until the event completes
  launch();
#ifdef SLIDETRAIN_TORCH_CUDA
  const auto ncclStream = c10::cuda::getStreamFromExternal(impl->stream,
                                                           static_cast<c10::DeviceIndex>(impl->device));
  for (const auto& t : tensors)
    c10::cuda::CUDACachingAllocator::recordStream(t.storage().data_ptr(), ncclStream);
#else
  (void)tensors;  // cudaMalloc'd buffers: their cudaFree synchronises the device
#endif
  auto p = std::make_shared<NcclComm::Impl::Pending>();
  SLIDETRAIN_CUDA_CHECK(cudaEventCreateWithFlags(&p->done, cudaEventDisableTiming));
  SLIDETRAIN_CUDA_CHECK(cudaEventRecord(p->done, impl->stream));
  p->start = std::chrono::steady_clock::now();
  detail::noteActivity(what);
  p->what = std::move(what);
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    impl->pending.push_back(p);  // the watchdog ends the job if it does not complete in time
  }
  return std::make_shared<NcclWork>(impl, std::move(p));
}

std::string describe(const char* name, uint64_t seq, const at::Tensor& t) {
  return std::string(name) + " #" + std::to_string(seq) + " (nccl, " +
         c10::toString(t.scalar_type()) + ", " + std::to_string(t.numel()) + " elements)";
}

}  // namespace

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
  const detail::CudaDeviceScope onDevice(impl_->device);  // libtorch's current device: makePlanes
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
  // Non-blocking: no implicit synchronisation with the legacy default stream (the compute
  // stream, usually); the order against the compute stream is explicit, through events.
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
  detail::checkCuda(t, "allReduce");
  const ncclDataType_t type = detail::ncclType(t.scalar_type());
  const ncclRedOp_t nop = detail::ncclOp(op, t.scalar_type());
  return enqueue(impl_, {t}, describe("allReduce", impl_->seq++, t), [&] {
    // A single collective needs no ncclGroupStart/End (those batch several into one launch).
    SLIDETRAIN_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), type, nop,
                                        impl_->comm.load(), impl_->stream));
  });
}

void NcclComm::allReduce(at::Tensor& t, ReduceOp op) { allReduceAsync(t, op)->wait(); }

void NcclComm::broadcast(at::Tensor& t, int root) {
  detail::checkCuda(t, "broadcast");
  if (root < 0 || root >= impl_->size)
    throw DistError(detail::rankHost() + ": broadcast root " + std::to_string(root) +
                    " is not a rank of a world of " + std::to_string(impl_->size));
  const ncclDataType_t type = detail::ncclType(t.scalar_type());
  enqueue(impl_, {t}, describe("broadcast", impl_->seq++, t), [&] {
    SLIDETRAIN_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), type, root,
                                        impl_->comm.load(), impl_->stream));
  })->wait();
}

at::Tensor NcclComm::allGather(const at::Tensor& t) {
  detail::checkCuda(t, "allGather");
  const ncclDataType_t type = detail::ncclType(t.scalar_type());
  std::vector<int64_t> shape{impl_->size};
  shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
  at::Tensor result = detail::emptyCuda(shape, t.options(), impl_->device);
  enqueue(impl_, {t, result}, describe("allGather", impl_->seq++, t), [&] {
    SLIDETRAIN_NCCL_CHECK(ncclAllGather(t.data_ptr(), result.data_ptr(), t.numel(), type,
                                        impl_->comm.load(), impl_->stream));
  })->wait();
  return result;
}

void NcclComm::barrier() {
  // An all-reduce of one byte, waited for on the host: returns only when every rank got here.
  at::Tensor one = detail::emptyCuda({1}, at::TensorOptions().dtype(at::kByte), impl_->device);
  const std::string what = "barrier #" + std::to_string(impl_->seq++) + " (nccl)";
  enqueue(impl_, {one}, what, [&] {
    SLIDETRAIN_NCCL_CHECK(ncclAllReduce(one.data_ptr(), one.data_ptr(), 1, ncclUint8, ncclSum,
                                        impl_->comm.load(), impl_->stream));
  })->hostWait();
}

}  // namespace slidetrain::dist
