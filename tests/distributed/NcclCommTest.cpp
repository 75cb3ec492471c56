// NcclComm: builds everywhere NCCL is found; runs collectives only where a GPU is visible.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "distributed/MpiComm.h"
#ifdef SLIDETRAIN_WITH_NCCL
#include "distributed/NcclComm.h"
#endif

using namespace slidetrain::dist;

#ifdef SLIDETRAIN_WITH_NCCL

TEST(NcclComm, WithoutGpuConstructionThrowsNamingTheReason) {
  std::string why;
  if (cudaDeviceCountOrZero(&why) > 0) GTEST_SKIP() << "a GPU is visible; covered by the GPU test";
  try {
    makeComm("nccl");
    ADD_FAILURE() << "expected DistError";
  } catch (const DistError& e) {
    EXPECT_NE(std::string(e.what()).find("needs a CUDA device"), std::string::npos) << e.what();
  }
  EXPECT_EQ(makeComm("auto")->backend(), "mpi");  // auto falls back to MPI
}

TEST(NcclComm, SingleRankCollectivesOnGpu) {
  std::string why;
  if (cudaDeviceCountOrZero(&why) == 0)
    GTEST_SKIP() << "no usable CUDA device (" << why << "); NCCL collectives not exercised";
  NcclComm comm;
  ASSERT_EQ(comm.size(), worldSize());
  const int n = comm.size(), r = comm.rank();
  at::Tensor t = copyToCudaDevice(at::full({1000}, static_cast<float>(r)), comm.device());
  comm.allReduce(t, ReduceOp::Sum);
  EXPECT_TRUE(at::allclose(copyToHost(t), at::full({1000}, n * (n - 1) / 2.0f)));
  at::Tensor a = copyToCudaDevice(at::full({7}, 2.0 * r, at::kDouble), comm.device());
  comm.allReduceAsync(a, ReduceOp::Avg)->wait();
  EXPECT_TRUE(at::allclose(copyToHost(a), at::full({7}, (n - 1.0), at::kDouble)));
  at::Tensor b = copyToCudaDevice(at::full({3}, static_cast<int64_t>(r)), comm.device());
  comm.broadcast(b, n - 1);
  EXPECT_TRUE(at::equal(copyToHost(b), at::full({3}, static_cast<int64_t>(n - 1))));
  at::Tensor g = comm.allGather(copyToCudaDevice(at::full({2}, r, at::kInt), comm.device()));
  EXPECT_EQ(copyToHost(g).select(1, 0).sum().item<int>(), n * (n - 1) / 2);
  comm.barrier();
  at::Tensor cpu = at::ones({2});
  EXPECT_THROW(comm.allReduce(cpu), DistError);  // CPU tensors belong to MpiComm
}

#else

TEST(NcclComm, NotBuilt) {
  EXPECT_THROW(makeComm("nccl"), DistError);
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
