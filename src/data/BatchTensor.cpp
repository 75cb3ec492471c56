#include "src/data/BatchTensor.h"

#include <ATen/ATen.h>

namespace slidetrain {
namespace {

at::Tensor perChannel(const std::vector<double>& v, const at::Device& device) {
  return at::tensor(v, at::kDouble).to(at::kFloat).view({1, 3, 1, 1}).to(device);
}

}  // namespace

at::Tensor batchToTensor(const wsi::Batch& b, const Normalization& norm) {
  const int64_t n = static_cast<int64_t>(b.count());
  if (n == 0) return at::empty({0, 3, b.size, b.size}, at::kFloat);
  // from_blob does not copy; the permute+contiguous below makes the owned float copy.
  at::Tensor u8 = at::from_blob(const_cast<uint8_t*>(b.pixels.data()), {n, b.size, b.size, 3},
                                at::kByte);
  at::Tensor x = u8.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0).contiguous();
  return x.sub_(perChannel(norm.mean, at::kCPU)).div_(perChannel(norm.std, at::kCPU));
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

at::Tensor batchToDevice(const wsi::Batch& b, const Normalization& norm, const at::Device& device) {
  if (!device.is_cuda()) return batchToTensor(b, norm);
  const int64_t n = static_cast<int64_t>(b.count());
  if (n == 0) return at::empty({0, 3, b.size, b.size}, at::TensorOptions().dtype(at::kFloat).device(device));
  const int64_t bytes = n * b.size * b.size * 3;
  at::Tensor host;
  if (auto owner = b.pixels.customOwner()) {
    // Memory from pixelAllocatorFor: the pinned tensor itself, so the caching host allocator sees
    // the copy and keeps the block until it has completed.
    host = static_cast<at::Tensor*>(owner.get())->narrow(0, 0, bytes);
  } else {
    host = at::from_blob(const_cast<uint8_t*>(b.pixels.data()), {bytes}, at::kByte);
  }
  at::Tensor u8 = host.to(device, /*non_blocking=*/true).view({n, b.size, b.size, 3});
  at::Tensor x = u8.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0).contiguous();
  return x.sub_(perChannel(norm.mean, device)).div_(perChannel(norm.std, device));
}

}  // namespace slidetrain
