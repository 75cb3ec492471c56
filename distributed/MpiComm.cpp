// MpiComm: collectives over a private duplicate of MPI_COMM_WORLD. Every collective, blocking or
// not, is a nonblocking MPI call completed by polling MPI_Test, so each one honours
// CommOptions::timeout and a dead peer ends the job with a message instead of a hang.
#include "distributed/MpiComm.h"

#include <mpi.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <atomic>
#include <climits>
#include <mutex>

#include "distributed/Check.h"
#ifdef SLIDETRAIN_WITH_NCCL
#include "distributed/NcclComm.h"
#endif

namespace slidetrain::dist {
namespace {

MPI_Datatype mpiType(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kChar: return MPI_INT8_T;
    case at::kShort: return MPI_INT16_T;
    default:
      throw DistError(detail::rankHost() + ": MpiComm does not support dtype " +
                      std::string(c10::toString(t)) +
                      " (float16/bfloat16 travel as float32; use float, double or integers)");
  }
}

MPI_Op mpiOp(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg: return MPI_SUM;  // Avg divides once after the sum
    case ReduceOp::Max: return MPI_MAX;
    case ReduceOp::Min: return MPI_MIN;
  }
  return MPI_SUM;
}

/// The buffer MPI works on: `t` itself when it is a contiguous CPU tensor of an MPI type, else a
/// contiguous CPU copy (float32 for half types) that is copied back on completion.
at::Tensor staging(const at::Tensor& t) {
  at::ScalarType st = t.scalar_type();
  if (st == at::kHalf || st == at::kBFloat16) st = at::kFloat;
  return t.to(at::kCPU, st).contiguous();
}

int checkedCount(const at::Tensor& t) {
  if (t.numel() > INT_MAX)
    throw DistError(detail::rankHost() + ": tensor of " + std::to_string(t.numel()) +
                    " elements exceeds MPI's int count; split it");
  return static_cast<int>(t.numel());
}

std::string describe(const char* name, uint64_t seq, const at::Tensor& t) {
  return std::string(name) + " #" + std::to_string(seq) + " (" + c10::toString(t.scalar_type()) +
         ", " + std::to_string(t.numel()) + " elements)";
}

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
}

MpiComm::~MpiComm() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && impl_->comm != MPI_COMM_NULL) SLIDETRAIN_MPI_CHECK_NOTHROW(MPI_Comm_free(&impl_->comm));
}

int MpiComm::rank() const { return impl_->rank; }
int MpiComm::size() const { return impl_->size; }

std::shared_ptr<Work> MpiComm::allReduceAsync(at::Tensor t, ReduceOp op) {
  at::Tensor buf = staging(t);
  const MPI_Datatype type = mpiType(buf.scalar_type());
  const int count = checkedCount(buf);
  const std::string what = describe("allReduce", impl_->seq++, t);
  MPI_Request req = impl_->start([&](MPI_Request* r) {
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf.data_ptr(), count, type, mpiOp(op), impl_->comm, r);
    if (rc != MPI_SUCCESS)
      detail::throwCallError(__FILE__, __LINE__, ("MPI_Iallreduce(" + what + ")").c_str(),
                             detail::mpiErrorString(rc));
  });
  const int n = impl_->size;
  auto finish = [t, buf, op, n]() mutable {
    if (op == ReduceOp::Avg) {
      // Fused averaging: one division over the whole (bucket) buffer.
      if (at::isFloatingType(buf.scalar_type()))
        buf.div_(n);
      else
        buf.div_(n, "trunc");
    }
    if (buf.data_ptr() != t.data_ptr()) t.copy_(buf);
  };
  return std::make_shared<MpiWork>(req, what, impl_->options.timeout, std::move(finish));
}

void MpiComm::allReduce(at::Tensor& t, ReduceOp op) {
  // Blocking MPI_Allreduce under a watchdog Deadline rather than Iallreduce + MPI_Test: the
  // blocking call uses MPI's tuned (ring/segmented) algorithms, ~2x the bandwidth on large buffers.
  at::Tensor buf = staging(t);
  const MPI_Datatype type = mpiType(buf.scalar_type());
  const int count = checkedCount(buf);
  const std::string what = describe("allReduce", impl_->seq++, t);
  {
    std::unique_lock<std::mutex> lock(detail::mpiMutex(), std::defer_lock);
    if (!detail::mpiThreadMultiple()) lock.lock();
    detail::Deadline deadline(what, impl_->options.timeout);
    SLIDETRAIN_MPI_CHECK(
        MPI_Allreduce(MPI_IN_PLACE, buf.data_ptr(), count, type, mpiOp(op), impl_->comm));
  }
  if (op == ReduceOp::Avg) {
    if (at::isFloatingType(buf.scalar_type()))
      buf.div_(impl_->size);
    else
      buf.div_(impl_->size, "trunc");
  }
  if (buf.data_ptr() != t.data_ptr()) t.copy_(buf);
}

void MpiComm::broadcast(at::Tensor& t, int root) {
  if (root < 0 || root >= impl_->size)
    throw DistError(detail::rankHost() + ": broadcast root " + std::to_string(root) +
                    " is not a rank of a world of " + std::to_string(impl_->size));
  at::Tensor buf = staging(t);
  const MPI_Datatype type = mpiType(buf.scalar_type());
  const int count = checkedCount(buf);
  const std::string what = describe("broadcast", impl_->seq++, t);
  MPI_Request req = impl_->start([&](MPI_Request* r) {
    SLIDETRAIN_MPI_CHECK(MPI_Ibcast(buf.data_ptr(), count, type, root, impl_->comm, r));
  });
  MpiWork(req, what, impl_->options.timeout, [&] {
    if (buf.data_ptr() != t.data_ptr()) t.copy_(buf);
  }).wait();
}

at::Tensor MpiComm::allGather(const at::Tensor& t) {
  at::Tensor send = staging(t);
  std::vector<int64_t> shape{impl_->size};
  shape.insert(shape.end(), t.sizes().begin(), t.sizes().end());
  at::Tensor out = at::empty(shape, send.options());
  const MPI_Datatype type = mpiType(send.scalar_type());
  const int count = checkedCount(send);
  const std::string what = describe("allGather", impl_->seq++, t);
  MPI_Request req = impl_->start([&](MPI_Request* r) {
    SLIDETRAIN_MPI_CHECK(MPI_Iallgather(send.data_ptr(), count, type, out.data_ptr(), count, type,
                                        impl_->comm, r));
  });
  MpiWork(req, what, impl_->options.timeout, nullptr).wait();
  return out.to(t.device(), t.scalar_type());
}

void MpiComm::barrier() {
  const std::string what = "barrier #" + std::to_string(impl_->seq++);
  MPI_Request req =
      impl_->start([&](MPI_Request* r) { SLIDETRAIN_MPI_CHECK(MPI_Ibarrier(impl_->comm, r)); });
  MpiWork(req, what, impl_->options.timeout, nullptr).wait();
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
