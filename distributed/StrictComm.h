#pragma once
// StrictComm: a device-plane communicator for tests that behaves like NCCL on a CPU machine. It
// forwards to another communicator (MPI) but accepts only tensors whose storage was declared as
// device data (Comm::declareDeviceTensor) and that live on its device; anything else - a host
// count, a metric, a shape signature - throws DistError naming the call, as NCCL would fail on a
// host pointer. Backend "strict" of makePlanes (train.backend=strict) uses it, so the trainer,
// cross-validation and predict run through it under mpirun in ctest.
#include <memory>
#include <mutex>
#include <unordered_map>

#include <c10/core/Device.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>

#include "distributed/Comm.h"

namespace slidetrain::dist {

class StrictComm : public Comm {
 public:
  StrictComm(std::shared_ptr<Comm> inner, c10::Device device);

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string backend() const override { return "strict"; }
  void allReduce(at::Tensor& t, ReduceOp op = ReduceOp::Sum) override;
  std::shared_ptr<Work> allReduceAsync(at::Tensor t, ReduceOp op = ReduceOp::Sum) override;
  void broadcast(at::Tensor& t, int root = 0) override;
  /// The gathered tensor is device data too (declared on return).
  at::Tensor allGather(const at::Tensor& t) override;
  void barrier() override { inner_->barrier(); }
  void waitForAll(const std::function<void()>& tick, std::chrono::milliseconds every) override {
    inner_->waitForAll(tick, every);
  }
  void declareDeviceTensor(const at::Tensor& t) override;

  /// Tensors declared and still alive (for tests of the contract itself).
  size_t declaredCount();

 private:
  void check(const at::Tensor& t, const char* call);

  std::shared_ptr<Comm> inner_;
  c10::Device device_;
  std::mutex mu_;  // GradSync declares and sends from autograd's thread
  std::unordered_map<const c10::StorageImpl*, c10::weak_intrusive_ptr<c10::StorageImpl>> declared_;
  size_t pruneAt_ = 64;
};

}  // namespace slidetrain::dist
