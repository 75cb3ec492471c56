// MpiComm: collectives over a private duplicate of MPI_COMM_WORLD. Every collective honours
// CommOptions::timeout, so a dead peer ends the job with a message instead of a hang:
//  * allReduce: blocking MPI_Allreduce under a watchdog Deadline (MPI's tuned algorithms);
//  * allReduceAsync: queued to the communicator's background thread (a second private
//    communicator, blocking MPI_Allreduce in FIFO order, Deadline armed at submission) when MPI
//    gives MPI_THREAD_MULTIPLE; else MPI_Iallreduce completed by polling MPI_Test;
//  * broadcast, allGather, barrier: nonblocking MPI call polled with the timeout.
// The communication thread is in MpiCommThread.h, the tensor <-> MPI buffer helpers in MpiTypes.h.
#include "distributed/MpiComm.h"

#include <mpi.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "distributed/Check.h"
#include "distributed/Heartbeat.h"
#include "distributed/MpiCommThread.h"
#include "distributed/MpiTypes.h"
#ifdef SLIDETRAIN_WITH_NCCL
#include "distributed/NcclComm.h"
#endif

namespace slidetrain::dist {
namespace {

/// One outstanding MPI request plus what to do when it completes (copy back, divide for Avg).
class MpiWork : public Work {
 public:
  MpiWork(MPI_Request req, std::string what, std::chrono::milliseconds timeout,
          std::function<void()> finish)
      : req_(req), what_(std::move(what)), timeout_(timeout), finish_(std::move(finish)) {}
  ~MpiWork() override {
    // Abandoning an in-flight collective would let MPI write into freed memory later.
    if (!done_) {
      try {
        wait();
      } catch (...) {
      }
    }
  }

  bool isCompleted() override {
    std::lock_guard<std::mutex> lock(mu_);
    return testLocked();
  }

  void wait() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_) return;
    detail::pollWithTimeout([this] { return testLocked(); }, what_,
                            timeout_);
  }

 private:
  bool testLocked() {
    if (done_) return true;
    int flag = 0;
    {
      std::unique_lock<std::mutex> mpiLock(detail::mpiMutex(), std::defer_lock);
      if (!detail::mpiThreadMultiple()) mpiLock.lock();
      int rc = MPI_Test(&req_, &flag, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS)
        detail::throwCallError(__FILE__, __LINE__, ("MPI_Test(" + what_ + ")").c_str(),
                               detail::mpiErrorString(rc));
    }
    if (!flag) return false;
    done_ = true;
    if (finish_) finish_();
    return true;
  }

  MPI_Request req_;
  std::string what_;
  std::chrono::milliseconds timeout_;
  std::function<void()> finish_;
  bool done_ = false;
  std::mutex mu_;
};

}  // namespace

struct MpiComm::Impl {
  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0, size = 1;
  CommOptions options;
  std::atomic<uint64_t> seq{0};
  /// allReduceAsync's thread and its communicator (a second dup: its FIFO stream of
  /// all-reduces never interleaves with the caller thread's collectives on `comm`).
  MPI_Comm asyncComm = MPI_COMM_NULL;
  std::unique_ptr<detail::CommThread> thread;

  /// Starts a nonblocking MPI call (under the serialising lock when MPI is not MULTIPLE).
  template <typename F>
  MPI_Request start(F&& call) {
    std::unique_lock<std::mutex> lock(detail::mpiMutex(), std::defer_lock);
    if (!detail::mpiThreadMultiple()) lock.lock();
    MPI_Request req = MPI_REQUEST_NULL;
    call(&req);
    return req;
  }
};

MpiComm::MpiComm(CommOptions options) : impl_(std::make_unique<Impl>()) {
  ensureMpiInitialized();
  impl_->options = options;
  // A private communicator keeps our collectives from matching a library's or the user's own
  // MPI calls. MPI_Comm_dup is collective: communicators are created in the same order on
  // every rank.
  SLIDETRAIN_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_rank(impl_->comm, &impl_->rank));
  SLIDETRAIN_MPI_CHECK(MPI_Comm_size(impl_->comm, &impl_->size));
  if (options.commThread) {
    if (detail::mpiThreadMultiple()) {
      // Collective (same order on every rank: right after the first dup). commThread must be
      // the same on every rank, and so is the thread level (one MPI library per job).
      SLIDETRAIN_MPI_CHECK(MPI_Comm_dup(impl_->comm, &impl_->asyncComm));
      SLIDETRAIN_MPI_CHECK(MPI_Comm_set_errhandler(impl_->asyncComm, MPI_ERRORS_RETURN));
      impl_->thread = std::make_unique<detail::CommThread>(impl_->asyncComm, impl_->size);
    } else {
      static std::once_flag warned;
      std::call_once(warned, [] {
        std::fprintf(stderr,
                     "%s: MPI did not provide MPI_THREAD_MULTIPLE; MpiComm::allReduceAsync uses "
                     "MPI_Iallreduce polled by MPI_Test (slower, overlaps backward only when "
                     "polled)\n",
                     detail::rankHost().c_str());
      });
    }
  }
}

MpiComm::~MpiComm() {
  impl_->thread.reset();  // drains the queue (every submitted all-reduce completes), joins
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && impl_->asyncComm != MPI_COMM_NULL)
    SLIDETRAIN_MPI_CHECK_NOTHROW(MPI_Comm_free(&impl_->asyncComm));
  if (!finalized && impl_->comm != MPI_COMM_NULL) SLIDETRAIN_MPI_CHECK_NOTHROW(MPI_Comm_free(&impl_->comm));
}

int MpiComm::rank() const { return impl_->rank; }
int MpiComm::size() const { return impl_->size; }

std::shared_ptr<Work> MpiComm::allReduceAsync(at::Tensor t, ReduceOp op) {
  at::Tensor buf = detail::staging(t);
  const MPI_Datatype type = detail::mpiType(buf.scalar_type());
  const int count = detail::checkedCount(buf);
  const std::string what = detail::describe("allReduce", impl_->seq++, t);
  detail::noteActivity(what + " (queued)");
  if (impl_->thread) {
    // FIFO on the communication thread: callers submit in the same order on every rank.
    detail::CommThread::Request r;
    r.t = t;
    r.buf = buf;
    r.type = type;
    r.count = count;
    r.op = op;
    r.what = what + " on the communication thread";
    r.deadline = std::make_unique<detail::Deadline>(r.what, impl_->options.timeout);
    return impl_->thread->submit(std::move(r));
  }
  MPI_Request req = impl_->start([&](MPI_Request* r) {
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf.data_ptr(), count, type, detail::mpiOp(op),
                            impl_->comm, r);
    if (rc != MPI_SUCCESS)
      detail::throwCallError(__FILE__, __LINE__, ("MPI_Iallreduce(" + what + ")").c_str(),
                             detail::mpiErrorString(rc));
  });
  const int n = impl_->size;
  // Fused averaging: one division over the whole (bucket) buffer.
  auto finish = [t, buf, op, n]() mutable { detail::finishAllReduce(t, buf, op, n); };
  return std::make_shared<MpiWork>(req, what, impl_->options.timeout, std::move(finish));
}

void MpiComm::allReduce(at::Tensor& t, ReduceOp op) {
  // Blocking MPI_Allreduce under a watchdog Deadline rather than Iallreduce + MPI_Test: the
  // blocking call uses MPI's tuned (ring/segmented) algorithms, ~2x the bandwidth on large buffers.
  at::Tensor buf = detail::staging(t);
  const MPI_Datatype type = detail::mpiType(buf.scalar_type());
  const int count = detail::checkedCount(buf);
  const std::string what = detail::describe("allReduce", impl_->seq++, t);
  detail::noteActivity(what);
  {
    std::unique_lock<std::mutex> lock(detail::mpiMutex(), std::defer_lock);
    if (!detail::mpiThreadMultiple()) lock.lock();
    detail::Deadline deadline(what, impl_->options.timeout);
    SLIDETRAIN_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, buf.data_ptr(), count, type, detail::mpiOp(op), impl_->comm));
  }
  detail::finishAllReduce(t, buf, op, impl_->size);
}

void MpiComm::broadcast(at::Tensor& t, int root) {
  if (root < 0 || root >= impl_->size)
    throw DistError(detail::rankHost() + ": broadcast root " + std::to_string(root) +
                    " is not a rank of a world of " + std::to_string(impl_->size));
  at::Tensor buf = detail::staging(t);
  const MPI_Datatype type = detail::mpiType(buf.scalar_type());
  const int count = detail::checkedCount(buf);
  const std::string what = detail::describe("broadcast", impl_->seq++, t);
  detail::noteActivity(what);
  MPI_Request req = impl_->start([&](MPI_Request* r) {
    SLIDETRAIN_MPI_CHECK(MPI_Ibcast(buf.data_ptr(), count, type, root, impl_->comm, r));
  });
  MpiWork(req, what, impl_->options.timeout, [&] {
    if (buf.data_ptr() != t.data_ptr()) t.copy_(buf);
  }).wait();
}

at::Tensor MpiComm::allGather(const at::Tensor& t) {
  at::Tensor send = detail::staging(t);
  std::vector<int64_t> shape{impl_->size};
  shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
  at::Tensor out = at::empty(shape, send.options());
  const MPI_Datatype type = detail::mpiType(send.scalar_type());
  const int count = detail::checkedCount(send);
  const std::string what = detail::describe("allGather", impl_->seq++, t);
  detail::noteActivity(what);
  MPI_Request req = impl_->start([&](MPI_Request* r) {
    SLIDETRAIN_MPI_CHECK(MPI_Iallgather(send.data_ptr(), count, type, out.data_ptr(), count, type,
                                        impl_->comm, r));
  });
  MpiWork(req, what, impl_->options.timeout, nullptr).wait();
  return out.to(t.device(), t.scalar_type());
}

void MpiComm::barrier() {
  const std::string what = "barrier #" + std::to_string(impl_->seq++);
  detail::noteActivity(what);
  MPI_Request req =
      impl_->start([&](MPI_Request* r) { SLIDETRAIN_MPI_CHECK(MPI_Ibarrier(impl_->comm, r)); });
  MpiWork(req, what, impl_->options.timeout, nullptr).wait();
}

void MpiComm::waitForAll(const std::function<void()>& tick, std::chrono::milliseconds every) {
  const std::string what = "waitForAll #" + std::to_string(impl_->seq++);
  detail::noteActivity(what);
  MPI_Request req =
      impl_->start([&](MPI_Request* r) { SLIDETRAIN_MPI_CHECK(MPI_Ibarrier(impl_->comm, r)); });
  auto last = std::chrono::steady_clock::now();
  for (;;) {
    int flag = 0;
    {
      std::unique_lock<std::mutex> mpiLock(detail::mpiMutex(), std::defer_lock);
      if (!detail::mpiThreadMultiple()) mpiLock.lock();
      const int rc = MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS)
        detail::throwCallError(__FILE__, __LINE__, ("MPI_Test(" + what + ")").c_str(), detail::mpiErrorString(rc));
    }
    if (flag) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (tick && std::chrono::steady_clock::now() - last >= every) {
      last = std::chrono::steady_clock::now();
      tick();
    }
  }
}

std::shared_ptr<Comm> makeComm(const std::string& backend, CommOptions options) {
  if (backend == "mpi") return std::make_shared<MpiComm>(options);
  if (backend == "nccl" || backend == "auto") {
#ifdef SLIDETRAIN_WITH_NCCL
    // "auto" needs both a GPU and a CUDA-enabled libtorch: NCCL cannot reduce CPU tensors.
    if (backend == "nccl" || (at::hasCUDA() && cudaDeviceCountOrZero() > 0))
      return std::make_shared<NcclComm>(options);
#else
    if (backend == "nccl")
      throw DistError(
          "backend \"nccl\" was asked for but this slidetrain was built without NCCL. HINT: "
          "install CUDA and NCCL under /usr/local/cuda (or -DSLIDETRAIN_CUDA_ROOT=...) and "
          "rebuild, or use backend \"mpi\"");
#endif
    return std::make_shared<MpiComm>(options);
  }
  throw DistError("unknown communicator backend \"" + backend +
                  "\"; expected \"mpi\", \"nccl\" or \"auto\"");
}

}  // namespace slidetrain::dist
