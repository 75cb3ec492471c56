// StrictComm: the device-plane communicator of backend "strict" accepts declared device data
// only, as NCCL accepts device memory only.
#include <gtest/gtest.h>

#include <functional>

#include <ATen/ATen.h>

#include "distributed/MpiComm.h"
#include "distributed/Planes.h"
#include "distributed/StrictComm.h"

using namespace slidetrain::dist;

namespace {

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const DistError& e) {
    return e.what();
  }
  return "no DistError";
}

}  // namespace

TEST(StrictComm, RefusesUndeclaredTensorsNamingTheCall) {
  StrictComm comm(makeComm("mpi"), c10::Device(c10::kCPU));
  at::Tensor count = at::ones({3}, at::kLong);  // a host-side count, never declared
  const std::string e = errorOf([&] { comm.allReduce(count); });
  EXPECT_NE(e.find("StrictComm::allReduce"), std::string::npos) << e;
  EXPECT_NE(e.find("never declared as device data"), std::string::npos) << e;
  EXPECT_NE(e.find("host plane"), std::string::npos) << e;
  EXPECT_NE(errorOf([&] { comm.broadcast(count, 0); }), "no DistError");
  EXPECT_NE(errorOf([&] { comm.allGather(count); }), "no DistError");
  EXPECT_NE(errorOf([&] { comm.allReduceAsync(count); }), "no DistError");
}

TEST(StrictComm, AcceptsDeclaredTensorsAndTheirViews) {
  StrictComm comm(makeComm("mpi"), c10::Device(c10::kCPU));
  at::Tensor bucket = at::full({8}, 2.0f);
  comm.declareDeviceTensor(bucket);
  at::Tensor view = bucket.narrow(0, 2, 4);  // same storage: a slice of a bucket is device data
  EXPECT_NO_THROW(comm.allReduce(view, ReduceOp::Sum));
  EXPECT_NO_THROW(comm.allReduceAsync(bucket)->wait());
  EXPECT_NO_THROW(comm.broadcast(bucket, 0));
  at::Tensor gathered = comm.allGather(bucket);
  EXPECT_EQ(gathered.size(0), comm.size());
  EXPECT_NO_THROW(comm.allReduce(gathered));  // the gathered result is device data too
}

TEST(StrictComm, ForgetsFreedStorages) {
  StrictComm comm(makeComm("mpi"), c10::Device(c10::kCPU));
  {
    at::Tensor t = at::zeros({4});
    comm.declareDeviceTensor(t);
    EXPECT_EQ(comm.declaredCount(), 1u);
  }
  EXPECT_EQ(comm.declaredCount(), 0u);  // a new tensor at the same address is not declared
  for (int i = 0; i < 1000; ++i) comm.declareDeviceTensor(at::zeros({1}));  // pruned, bounded
  EXPECT_EQ(comm.declaredCount(), 0u);
}

TEST(StrictComm, RefusesTensorsOfAnotherDevice) {
  StrictComm comm(makeComm("mpi"), c10::Device(c10::kCUDA, 0));
  at::Tensor t = at::zeros({2});
  comm.declareDeviceTensor(t);
  const std::string e = errorOf([&] { comm.allReduce(t); });
  EXPECT_NE(e.find("tensor on cpu but the device plane is on cuda:0"), std::string::npos) << e;
}

TEST(Planes, CpuModelSharesTheMpiCommunicatorAndNcclNeedsCuda) {
  const Planes cpu = makePlanes("auto", c10::Device(c10::kCPU));
  EXPECT_EQ(cpu.host.get(), cpu.device.get());
  EXPECT_EQ(cpu.host->backend(), "mpi");
  const Planes strict = makePlanes("strict", c10::Device(c10::kCPU));
  EXPECT_EQ(strict.device->backend(), "strict");
  EXPECT_EQ(strict.host->backend(), "mpi");
  const std::string e = errorOf([] { makePlanes("nccl", c10::Device(c10::kCPU)); });
  EXPECT_NE(e.find("reduces CUDA tensors but the model is on the cpu"), std::string::npos) << e;
  EXPECT_NE(errorOf([] { makePlanes("gloo", c10::Device(c10::kCPU)); }).find("unknown"),
            std::string::npos);
}
