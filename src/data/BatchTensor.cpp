#include "src/data/BatchTensor.h"

#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace slidetrain {
namespace {

at::Tensor perChannel(const std::vector<double>& v, const at::Device& device) {
  return at::tensor(v, at::kDouble).to(at::kFloat).view({1, 3, 1, 1}).to(device);
}

}  // namespace

at::Tensor batchToTensor(const wsi::Batch& b, const Normalization& norm) {
  const int64_t n = static_cast<int64_t>(b.count()), s = b.size;
  at::Tensor x = at::empty({n, 3, s, s}, at::kFloat);
  if (n == 0) return x;
  if (norm.mean.size() != 3 || norm.std.size() != 3)
    throw std::invalid_argument("batchToTensor: expected 3 means and 3 stds (RGB)");
  // One pass: NHWC uint8 -> NCHW float, (pixel / 255 - mean) / std in float as three tensor
  // operations would compute it (the same values, bit for bit).
  const float mean[3] = {static_cast<float>(norm.mean[0]), static_cast<float>(norm.mean[1]),
                         static_cast<float>(norm.mean[2])};
  const float sd[3] = {static_cast<float>(norm.std[0]), static_cast<float>(norm.std[1]),
                       static_cast<float>(norm.std[2])};
  const uint8_t* in = b.pixels.data();
  float* out = x.data_ptr<float>();
  const int64_t plane = s * s;
  at::parallel_for(0, n, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const uint8_t* p = in + i * plane * 3;
      float* o = out + i * plane * 3;
      for (int c = 0; c < 3; ++c) {
        float* oc = o + c * plane;
        for (int64_t k = 0; k < plane; ++k) oc[k] = (static_cast<float>(p[3 * k + c]) / 255.0f - mean[c]) / sd[c];
      }
    }
  });
  return x;
}

at::Tensor labelsToTensor(const wsi::Batch& b) {
  std::vector<int64_t> l(b.labels.begin(), b.labels.end());
  return at::tensor(l, at::kLong);
}

wsi::PixelAllocator pixelAllocatorFor(const at::Device& device) {
  if (!device.is_cuda()) return {};
  return [](size_t bytes) {
    auto t = std::make_shared<at::Tensor>(
        at::empty({static_cast<int64_t>(bytes)}, at::TensorOptions().dtype(at::kByte).pinned_memory(true)));
    return wsi::PixelMemory{t->data_ptr<uint8_t>(), t};
  };
}

DeviceBatch::DeviceBatch(const Normalization& norm, const at::Device& device) : norm_(norm), device_(device) {
  if (device_.is_cuda()) mean_ = perChannel(norm_.mean, device_), std_ = perChannel(norm_.std, device_);
}

at::Tensor DeviceBatch::inputs(const wsi::Batch& b) const {
  if (!device_.is_cuda()) return batchToTensor(b, norm_);
  const int64_t n = static_cast<int64_t>(b.count());
  if (n == 0) return at::empty({0, 3, b.size, b.size}, at::TensorOptions().dtype(at::kFloat).device(device_));
  const int64_t bytes = n * b.size * b.size * 3;
  at::Tensor host;
  if (auto owner = b.pixels.customOwner()) {
    // Memory from pixelAllocatorFor: the pinned tensor itself, so the caching host allocator sees
    // the copy and keeps the block until it has completed.
    host = static_cast<at::Tensor*>(owner.get())->narrow(0, 0, bytes);
  } else {
    host = at::from_blob(const_cast<uint8_t*>(b.pixels.data()), {bytes}, at::kByte);
  }
  at::Tensor u8 = host.to(device_, /*non_blocking=*/true).view({n, b.size, b.size, 3});
  at::Tensor x = u8.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0).contiguous();
  return x.sub_(mean_).div_(std_);
}

at::Tensor DeviceBatch::labels(const wsi::Batch& b) const {
  if (!device_.is_cuda()) return labelsToTensor(b);
  // Pinned staging from the caching host allocator (the block is not reused before the copy has
  // run), then an asynchronous copy: the host does not wait for the device.
  const int64_t n = static_cast<int64_t>(b.count());
  at::Tensor host = at::empty({n}, at::TensorOptions().dtype(at::kLong).pinned_memory(true));
  int64_t* p = host.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) p[i] = b.labels[static_cast<size_t>(i)];
  return host.to(device_, /*non_blocking=*/true);
}

}  // namespace slidetrain
