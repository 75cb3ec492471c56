// NcclComm: builds wherever NCCL is found; runs collectives only where a GPU is visible (the GPU
// tests skip with the reason otherwise - see launch/gpu_check.sh for the machine that runs them).
#include <gtest/gtest.h>

#include <functional>

#include <ATen/ATen.h>

#include "distributed/MpiComm.h"
#include "distributed/Planes.h"
#ifdef SLIDETRAIN_WITH_NCCL
#include "distributed/NcclComm.h"
#endif

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

#ifdef SLIDETRAIN_WITH_NCCL

#define SKIP_WITHOUT_GPU()                                                                  \
  do {                                                                                      \
    std::string why_;                                                                       \
    if (cudaDeviceCountOrZero(&why_) == 0)                                                  \
      GTEST_SKIP() << "no usable CUDA device (" << why_ << "); NCCL collectives not run here"; \
  } while (0)

TEST(NcclComm, WithoutGpuConstructionThrowsNamingTheReason) {
  std::string why;
  if (cudaDeviceCountOrZero(&why) > 0) GTEST_SKIP() << "a GPU is visible; the GPU tests cover NcclComm";
  const std::string e = errorOf([] { makeComm("nccl"); });
  EXPECT_NE(e.find("needs a CUDA device"), std::string::npos) << e;
  EXPECT_NE(e.find("HINT"), std::string::npos) << e;
  EXPECT_EQ(makeComm("auto")->backend(), "mpi");  // auto falls back to MPI
  // A model said to be on CUDA: the device plane cannot be built without a GPU either.
  EXPECT_NE(errorOf([] { makePlanes("nccl", c10::Device(c10::kCUDA, 0)); }).find("needs a CUDA device"),
            std::string::npos);
}

TEST(NcclComm, CollectivesGiveClosedFormResults) {
  SKIP_WITHOUT_GPU();
  NcclComm comm;
  ASSERT_EQ(comm.size(), worldSize());
  const int n = comm.size(), r = comm.rank();
  at::Tensor t = copyToCudaDevice(at::full({1000}, static_cast<float>(r)), comm.device());
  comm.allReduce(t, ReduceOp::Sum);
  EXPECT_TRUE(at::allclose(copyToHost(t), at::full({1000}, n * (n - 1) / 2.0f)));
  at::Tensor a = copyToCudaDevice(at::full({7}, 2.0 * r, at::kDouble), comm.device());
  comm.allReduceAsync(a, ReduceOp::Avg)->wait();
  EXPECT_TRUE(at::allclose(copyToHost(a), at::full({7}, (n - 1.0), at::kDouble)));
  at::Tensor mx = copyToCudaDevice(at::full({3}, static_cast<int64_t>(r)), comm.device());
  comm.allReduce(mx, ReduceOp::Max);
  EXPECT_TRUE(at::equal(copyToHost(mx), at::full({3}, static_cast<int64_t>(n - 1))));
  at::Tensor b = copyToCudaDevice(at::full({3}, static_cast<int64_t>(r)), comm.device());
  comm.broadcast(b, n - 1);
  EXPECT_TRUE(at::equal(copyToHost(b), at::full({3}, static_cast<int64_t>(n - 1))));
  at::Tensor g = comm.allGather(copyToCudaDevice(at::full({2}, r, at::kInt), comm.device()));
  const at::Tensor gh = copyToHost(g);
  ASSERT_EQ(gh.sizes(), (std::vector<int64_t>{n, 2}));
  for (int k = 0; k < n; ++k) EXPECT_EQ(gh[k][1].item<int>(), k);
  comm.barrier();
}

TEST(NcclComm, ManyAsyncAllReducesInFlightCompleteInOrder) {
  SKIP_WITHOUT_GPU();
  NcclComm comm;
  const int n = comm.size(), r = comm.rank();
  std::vector<at::Tensor> buckets;
  std::vector<std::shared_ptr<Work>> works;
  for (int k = 0; k < 8; ++k) {  // as GradSync launches buckets while backward runs
    buckets.push_back(copyToCudaDevice(at::full({1 << 16}, float(k + r)), comm.device()));
    works.push_back(comm.allReduceAsync(buckets.back(), ReduceOp::Sum));
  }
  for (int k = 0; k < 8; ++k) {
    works[k]->wait();
    const float expect = float(k) * n + n * (n - 1) / 2.0f;
    EXPECT_TRUE(at::allclose(copyToHost(buckets[k]), at::full({1 << 16}, expect))) << "bucket " << k;
    EXPECT_TRUE(works[k]->isCompleted());
  }
}

TEST(NcclComm, RefusesHostTensorsPointingAtTheHostPlane) {
  SKIP_WITHOUT_GPU();
  NcclComm comm;
  at::Tensor cpu = at::ones({2});
  const std::string e = errorOf([&] { comm.allReduce(cpu); });
  EXPECT_NE(e.find("needs a CUDA tensor"), std::string::npos) << e;
  EXPECT_NE(e.find("host plane"), std::string::npos) << e;
  EXPECT_NE(errorOf([&] { comm.allGather(cpu); }), "no DistError");
  EXPECT_NE(errorOf([&] { comm.broadcast(cpu, 0); }), "no DistError");
}

TEST(NcclComm, LibtorchCudaTensorsOnTheCurrentStream) {
  SKIP_WITHOUT_GPU();
  if (!at::hasCUDA()) GTEST_SKIP() << "this libtorch has no CUDA: only raw CUDA buffers exist";
  const Planes planes = makePlanes("nccl", c10::Device(c10::kCUDA, 0));
  ASSERT_EQ(planes.device->backend(), "nccl");
  ASSERT_EQ(planes.host->backend(), "mpi");
  const int n = planes.size();
  // Produced by a kernel on the current stream, reduced, then consumed by another kernel there:
  // the events order the three without any host synchronisation in between.
  at::Tensor t = at::arange(1 << 20, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA)).mul_(2);
  planes.device->allReduceAsync(t, ReduceOp::Sum)->wait();
  const at::Tensor out = t.add(1).cpu();
  const at::Tensor expect = at::arange(1 << 20, at::kFloat).mul_(2.0f * n).add_(1);
  EXPECT_TRUE(at::equal(out, expect));
}

#else

TEST(NcclComm, NotBuilt) {
  const std::string e = errorOf([] { makeComm("nccl"); });
  EXPECT_NE(e.find("built without NCCL"), std::string::npos) << e;
  GTEST_SKIP() << "slidetrain built without NCCL (no nccl.h/libnccl/cudart under the CUDA root)";
}

#endif

TEST(MakeComm, SingleProcessMpiAndUnknownBackend) {
  auto comm = makeComm("mpi");
  EXPECT_EQ(comm->backend(), "mpi");
  EXPECT_EQ(comm->size(), worldSize());
  at::Tensor t = at::full({4}, 3.0f);
  comm->allReduce(t, ReduceOp::Avg);
  if (comm->size() == 1) {
    EXPECT_TRUE(at::equal(t, at::full({4}, 3.0f)));
  }
  EXPECT_THROW(makeComm("gloo"), DistError);
}
