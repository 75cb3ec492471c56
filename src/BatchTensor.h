#pragma once
// uint8 NHWC batches from the patch stream -> normalised float NCHW tensors.
#include <vector>

#include <ATen/Tensor.h>

#include "wsi/PatchStream.h"

namespace slidetrain {

struct Normalization {
  std::vector<double> mean{0.485, 0.456, 0.406};
  std::vector<double> std{0.229, 0.224, 0.225};
};

/// Float [N, 3, S, S] tensor of (pixel/255 - mean) / std.
at::Tensor batchToTensor(const wsi::Batch& b, const Normalization& norm);
/// Int64 [N] labels.
at::Tensor labelsToTensor(const wsi::Batch& b);

}  // namespace slidetrain
