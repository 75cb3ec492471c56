#pragma once
// Stream batches (uint8 NHWC) -> normalised float NCHW model inputs on the model's device.
#include <vector>

#include <ATen/Tensor.h>

#include "wsi/PatchStream.h"

namespace slidetrain {

struct Normalization {
  std::vector<double> mean{0.485, 0.456, 0.406};
  std::vector<double> std{0.229, 0.224, 0.225};
};

/// Float [N, 3, S, S] CPU tensor of (pixel/255 - mean) / std.
at::Tensor batchToTensor(const wsi::Batch& b, const Normalization& norm);
/// Int64 [N] labels.
at::Tensor labelsToTensor(const wsi::Batch& b);

/// Pinned (page-locked) host memory for the stream's batches (StreamOptions::pixelAllocator),
/// from libtorch's caching host allocator: a block goes back to the pool only once the copies
/// that read it have completed. Only for a CUDA device (empty function for the CPU).
wsi::PixelAllocator pixelAllocatorFor(const at::Device& device);

/// Stream batches -> model inputs and labels on one device, without waiting for the device: the
/// normalisation's per-channel tensors are made there once, at construction.
class DeviceBatch {
 public:
  DeviceBatch(const Normalization& norm, const at::Device& device);
  /// Float [N, 3, S, S] model inputs. CPU: batchToTensor. CUDA: the uint8 batch is copied as it
  /// is (a quarter of the bytes of a float batch; asynchronous when its memory is pinned, so the
  /// host goes on to the next batch) and converted and normalised on the GPU, on the current
  /// stream.
  at::Tensor inputs(const wsi::Batch& b) const;
  /// Int64 [N] labels. CUDA: staged in pinned memory and copied asynchronously.
  at::Tensor labels(const wsi::Batch& b) const;
  const at::Device& device() const { return device_; }

 private:
  Normalization norm_;
  at::Device device_;
  at::Tensor mean_, std_;  ///< [1, 3, 1, 1] float on the device (CUDA only)
};

}  // namespace slidetrain
