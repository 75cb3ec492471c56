// The one device rule (train.device) and train.deterministic.
#include <gtest/gtest.h>

#include <cstdlib>

#include <ATen/Context.h>
#include <torch/cuda.h>

#include "src/Errors.h"
#include "src/Runtime.h"

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
