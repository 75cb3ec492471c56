// CommThread: a FIFO of all-reduces run by one thread with blocking MPI_Allreduce.
#include "distributed/MpiCommThread.h"

#include <c10/core/GradMode.h>

#include "distributed/MpiTypes.h"

namespace slidetrain::dist::detail {

ThreadWork::~ThreadWork() {
  // The request owns its tensors, so nothing dangles; waiting keeps "the result is in place
  // once the Work is gone" true, as for the polled path. A stuck peer ends the job through
  // the request's Deadline, so this cannot hang forever.
  std::unique_lock<std::mutex> lock(s_->mu);
  s_->cv.wait(lock, [this] { return s_->done; });
}

bool ThreadWork::isCompleted() {
  std::lock_guard<std::mutex> lock(s_->mu);
  if (s_->done && s_->error) std::rethrow_exception(s_->error);
  return s_->done;
}

void ThreadWork::wait() {
  std::unique_lock<std::mutex> lock(s_->mu);
  s_->cv.wait(lock, [this] { return s_->done; });
  if (s_->error) std::rethrow_exception(s_->error);
}

CommThread::CommThread(MPI_Comm comm, int size) : comm_(comm), size_(size) {
  thread_ = std::thread([this] { run(); });
}

CommThread::~CommThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;  // the queue is drained first: every submitted Work completes
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<Work> CommThread::submit(Request r) {
  auto state = std::make_shared<AsyncState>();
  r.state = state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(r));
  }
  cv_.notify_one();
  return std::make_shared<ThreadWork>(std::move(state));
}

void CommThread::run() {
  for (;;) {
    Request r;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      r = std::move(queue_.front());
      queue_.pop_front();
    }
    std::exception_ptr error;
    try {
      const int rc = MPI_Allreduce(MPI_IN_PLACE, r.buf.data_ptr(), r.count, r.type,
                                   mpiOp(r.op), comm_);
      if (rc != MPI_SUCCESS)
        throwCallError(__FILE__, __LINE__,
                       ("MPI_Allreduce(" + r.what + ") on the communication thread").c_str(),
                       mpiErrorString(rc));
      c10::NoGradGuard noGrad;
      finishAllReduce(r.t, r.buf, r.op, size_);  // fused averaging, here, off the caller
    } catch (...) {
      error = std::current_exception();
    }
    r.deadline.reset();
    // Drop our references before signalling: the waiter may free the tensors right after.
    r.t = at::Tensor();
    r.buf = at::Tensor();
    {
      std::lock_guard<std::mutex> lock(r.state->mu);
      r.state->error = error;
      r.state->done = true;
    }
    r.state->cv.notify_all();
  }
}

}  // namespace slidetrain::dist::detail
