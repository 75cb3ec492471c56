// StrictComm: see StrictComm.h.
#include "distributed/StrictComm.h"

#include <ATen/Tensor.h>

#include "distributed/Check.h"

namespace slidetrain::dist {

StrictComm::StrictComm(std::shared_ptr<Comm> inner, c10::Device device)
    : inner_(std::move(inner)), device_(device) {
  if (!inner_) throw DistError("StrictComm: no communicator to forward to");
}

void StrictComm::declareDeviceTensor(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return;
  std::lock_guard<std::mutex> lock(mu_);
  const c10::Storage& s = t.storage();
  declared_.insert_or_assign(s.unsafeGetStorageImpl(), s.getWeakStorageImpl());
  if (declared_.size() >= pruneAt_) {  // forget storages that were freed (amortised)
    for (auto it = declared_.begin(); it != declared_.end();)
      it = it->second.expired() ? declared_.erase(it) : std::next(it);
    pruneAt_ = std::max<size_t>(64, 2 * declared_.size());
  }
}

size_t StrictComm::declaredCount() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& kv : declared_) n += kv.second.expired() ? 0 : 1;
  return n;
}

void StrictComm::check(const at::Tensor& t, const char* call) {
  const std::string what = std::string("StrictComm::") + call + " (device plane, " +
                           c10::toString(t.scalar_type()) + " " + c10::str(t.sizes()) + ")";
  if (t.device() != device_)
    throw DistError(detail::rankHost() + ": " + what + ": tensor on " + t.device().str() +
                    " but the device plane is on " + device_.str() +
                    ". HINT: host data (counts, metrics) goes to the host plane");
  bool ok = false;
  if (t.has_storage()) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = declared_.find(t.storage().unsafeGetStorageImpl());
    ok = it != declared_.end() && !it->second.expired();
  }
  if (!ok)
    throw DistError(detail::rankHost() + ": " + what +
                    ": this tensor was never declared as device data (NCCL would fail on it the "
                    "same way if it lived in host memory). HINT: send host data (counts, "
                    "metrics, signatures) through the host plane; declare device data with "
                    "Comm::declareDeviceTensor where it is created");
}

void StrictComm::allReduce(at::Tensor& t, ReduceOp op) {
  check(t, "allReduce");
  inner_->allReduce(t, op);
}

std::shared_ptr<Work> StrictComm::allReduceAsync(at::Tensor t, ReduceOp op) {
  check(t, "allReduceAsync");
  return inner_->allReduceAsync(std::move(t), op);
}

void StrictComm::broadcast(at::Tensor& t, int root) {
  check(t, "broadcast");
  inner_->broadcast(t, root);
}

at::Tensor StrictComm::allGather(const at::Tensor& t) {
  check(t, "allGather");
  at::Tensor out = inner_->allGather(t);
  declareDeviceTensor(out);
  return out;
}

}  // namespace slidetrain::dist
