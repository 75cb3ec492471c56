// The one device rule (train.device) and train.deterministic.
#include <gtest/gtest.h>

#include <cstdlib>

#include <ATen/Context.h>
#include <torch/cuda.h>

#include "src/config/Errors.h"
#include "src/runtime/Runtime.h"
#include "src/train/Trainer.h"

namespace slidetrain {
namespace {

TEST(Runtime, DeviceRule) {
  EXPECT_EQ(chooseDevice("cpu", 3), c10::Device(c10::kCPU));
  if (torch::cuda::is_available()) {
    const int n = static_cast<int>(torch::cuda::device_count());
    EXPECT_EQ(chooseDevice("auto", n + 1), c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(1 % n)));
    GTEST_SKIP() << "a GPU is visible: the no-GPU error is not reachable here";
  }
  EXPECT_EQ(chooseDevice("auto", 1), c10::Device(c10::kCPU));
  try {
    chooseDevice("cuda", 0);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("train.device"), std::string::npos) << m;
    EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  }
  EXPECT_THROW(chooseDevice("tpu", 0), ConfigError);
}

TEST(Runtime, ThreadPlanNeverCountsACoreTwice) {
  // Bound rank (mask of its own 8 cores on a 32-core node), CPU model: a quarter to the stream.
  ThreadPlan p = planThreads(0, 0, 8, 32, 4, /*cuda=*/false);
  EXPECT_FALSE(p.sharedMask);
  EXPECT_EQ(p.share, 8);
  EXPECT_EQ(p.workers, 2);
  EXPECT_EQ(p.compute, 6);
  // Unbound ranks (every mask is the whole node): the node's cores are shared by its ranks.
  p = planThreads(0, 0, 32, 32, 4, false);
  EXPECT_TRUE(p.sharedMask);
  EXPECT_EQ(p.share, 8);
  EXPECT_EQ(p.compute + p.workers, 8);
  // A CUDA model computes on the GPU: one host thread, the rest read patches.
  p = planThreads(0, 0, 16, 64, 4, true);
  EXPECT_EQ(p.compute, 1);
  EXPECT_EQ(p.workers, 15);
  // One of the two given: the other takes what is left; both given: as asked.
  p = planThreads(6, 0, 8, 8, 1, false);
  EXPECT_EQ(p.workers, 2);
  p = planThreads(0, 3, 8, 8, 1, false);
  EXPECT_EQ(p.compute, 5);
  p = planThreads(4, 4, 2, 2, 1, false);
  EXPECT_EQ(p.compute + p.workers, 8);
  // Never zero, even on one core shared by two ranks.
  p = planThreads(0, 0, 1, 1, 2, false);
  EXPECT_EQ(p.compute, 1);
  EXPECT_EQ(p.workers, 1);
  EXPECT_NE(planThreads(0, 0, 4, 8, 1, false).describe().find("affinity: 4 of 8 cores"), std::string::npos);
}

TEST(Runtime, DeterministicSwitch) {
  unsetenv("CUBLAS_WORKSPACE_CONFIG");
  setDeterministic(true);
  EXPECT_TRUE(at::globalContext().deterministicAlgorithms());
  EXPECT_TRUE(at::globalContext().deterministicCuDNN());
  EXPECT_FALSE(at::globalContext().benchmarkCuDNN());
  ASSERT_NE(std::getenv("CUBLAS_WORKSPACE_CONFIG"), nullptr);
  EXPECT_STREQ(std::getenv("CUBLAS_WORKSPACE_CONFIG"), ":4096:8");
  setDeterministic(false);
  EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
}

}  // namespace
}  // namespace slidetrain
