#pragma once
// MpiComm's background communication thread (Horovod's design) and the Work it returns: the
// thread owns a private communicator and runs queued all-reduces one after the other with the
// blocking MPI_Allreduce, which keeps OpenMPI's tuned algorithms and progresses by itself while
// the submitting thread computes. Used only when MPI gives MPI_THREAD_MULTIPLE. Internal to
// MpiComm (not included by users).
#include <mpi.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <ATen/ATen.h>

#include "distributed/Check.h"
#include "distributed/Comm.h"

namespace slidetrain::dist::detail {

/// Completion state shared by a ThreadWork and its queued request.
struct AsyncState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
};

/// Work of a queued all-reduce: wait() blocks until the thread ran it, rethrowing its error.
class ThreadWork : public Work {
 public:
  explicit ThreadWork(std::shared_ptr<AsyncState> s) : s_(std::move(s)) {}
  ~ThreadWork() override;
  bool isCompleted() override;
  void wait() override;

 private:
  std::shared_ptr<AsyncState> s_;
};

/// Ordering contract: requests run in submission (FIFO) order on one communicator, so callers
/// must submit in the same order on every rank (GradSync does: buckets launch strictly in
/// bucket order, fixed at construction). Requests from several caller threads would need that
/// order too; MpiComm does not reorder or negotiate like Horovod's coordinator.
class CommThread {
 public:
  struct Request {
    at::Tensor t, buf;
    MPI_Datatype type;
    int count;
    ReduceOp op;
    std::string what;
    std::unique_ptr<Deadline> deadline;  // armed at submission, disarmed on completion
    std::shared_ptr<AsyncState> state;
  };

  /// Starts the thread on `comm` (a communicator of `size` ranks that only it uses).
  CommThread(MPI_Comm comm, int size);
  /// Drains the queue first (every submitted Work completes), then joins.
  ~CommThread();
  CommThread(const CommThread&) = delete;
  CommThread& operator=(const CommThread&) = delete;

  std::shared_ptr<Work> submit(Request r);

 private:
  void run();

  MPI_Comm comm_;
  int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Request> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace slidetrain::dist::detail
