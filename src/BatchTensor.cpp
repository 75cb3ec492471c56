#include "src/BatchTensor.h"

#include <ATen/ATen.h>

namespace slidetrain {

at::Tensor batchToTensor(const wsi::Batch& b, const Normalization& norm) {
  const int64_t n = static_cast<int64_t>(b.count());
  if (n == 0) return at::empty({0, 3, b.size, b.size}, at::kFloat);
  // from_blob does not copy; the permute+contiguous below makes the owned float copy.
  at::Tensor u8 = at::from_blob(const_cast<uint8_t*>(b.pixels.data()), {n, b.size, b.size, 3},
                                at::kByte);
  at::Tensor x = u8.permute({0, 3, 1, 2}).to(at::kFloat).div_(255.0).contiguous();
  at::Tensor mean = at::tensor(norm.mean, at::kDouble).to(at::kFloat).view({1, 3, 1, 1});
  at::Tensor std = at::tensor(norm.std, at::kDouble).to(at::kFloat).view({1, 3, 1, 1});
  return x.sub_(mean).div_(std);
}

at::Tensor labelsToTensor(const wsi::Batch& b) {
  std::vector<int64_t> l(b.labels.begin(), b.labels.end());
  return at::tensor(l, at::kLong);
}

}  // namespace slidetrain
