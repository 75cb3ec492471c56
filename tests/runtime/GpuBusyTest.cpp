// GPU busy (runtime/GpuBusy.h): which NVML device a CUDA index is, and a meter that says why it
// has no figure. On a machine with a GPU and its driver, the meter sees a busy device.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <thread>

#include <ATen/ATen.h>
#include <torch/cuda.h>

#include "src/runtime/GpuBusy.h"

namespace slidetrain {
namespace {

TEST(GpuBusy, CudaIndexToNvmlDeviceAsTheCudaRuntimeReadsVisibleDevices) {
  EXPECT_EQ(nvmlDeviceFor(0, nullptr), "index:0");
  EXPECT_EQ(nvmlDeviceFor(3, nullptr), "index:3");
  EXPECT_EQ(nvmlDeviceFor(0, "2,0"), "index:2");
  EXPECT_EQ(nvmlDeviceFor(1, "2,0"), "index:0");
  EXPECT_EQ(nvmlDeviceFor(0, " 3 "), "index:3");
  EXPECT_EQ(nvmlDeviceFor(0, "GPU-8a3f,1"), "uuid:GPU-8a3f");
  EXPECT_EQ(nvmlDeviceFor(1, "GPU-8a3f,1"), "index:1");
  EXPECT_EQ(nvmlDeviceFor(0, "MIG-5c1e"), "uuid:MIG-5c1e");
  // The list ends at the first entry that is not a device.
  EXPECT_EQ(nvmlDeviceFor(1, "0,1,-1,2"), "index:1");
  EXPECT_THROW(nvmlDeviceFor(2, "0,1,-1,2"), std::invalid_argument);
  EXPECT_THROW(nvmlDeviceFor(1, "1,foo,2"), std::invalid_argument);
  EXPECT_THROW(nvmlDeviceFor(0, ""), std::invalid_argument);
  EXPECT_THROW(nvmlDeviceFor(-1, nullptr), std::invalid_argument);
  try {
    nvmlDeviceFor(2, "4,5");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("CUDA_VISIBLE_DEVICES=\"4,5\" lists 2 device(s), not CUDA device 2"),
              std::string::npos) << e.what();
  }
}

TEST(GpuBusy, WithoutNvmlTheMeterSaysWhyAndHasNoFigure) {
  GpuBusyMeter missing(0, 10, "libnvidia-ml-not-here.so.1");
  EXPECT_FALSE(missing.available());
  EXPECT_NE(missing.why().find("cannot open libnvidia-ml-not-here.so.1"), std::string::npos) << missing.why();
  missing.restart();
  EXPECT_TRUE(std::isnan(missing.windowMeanPct()));

  GpuBusyMeter notNvml(0, 10, "libc.so.6");  // a library, but not NVML
  EXPECT_FALSE(notNvml.available());
  EXPECT_NE(notNvml.why().find("libc.so.6 has no nvmlInit_v2"), std::string::npos) << notNvml.why();
  EXPECT_TRUE(std::isnan(notNvml.windowMeanPct()));
}

TEST(GpuBusy, SeesABusyDevice) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (CPU libtorch or no GPU)";
  GpuBusyMeter meter(0, 20);
  ASSERT_TRUE(meter.available()) << meter.why();
  at::Tensor a = at::randn({4096, 4096}, at::TensorOptions().device(at::kCUDA));
  meter.restart();
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 8; ++i) a = at::tanh(at::matmul(a, a) * 1e-3);
    torch::cuda::synchronize();
  }
  const double busy = meter.windowMeanPct();
  EXPECT_GT(busy, 50) << "a device running matmuls back to back for 1.5 s";
  EXPECT_LE(busy, 100);
}

}  // namespace
}  // namespace slidetrain
