#pragma once
// The CPU kernels of SyncBatchNorm's training path: one pass over the input per step (the
// statistics, the normalisation, the backward's two sums, the input gradient), each fused and
// written so that the compiler vectorises it. Two layouts, the input's own: channels-first
// contiguous [N, C, *] (per-(n, c) planes) and channels-last [N, H, W, C] or [N, C] (rows of C).
// 4-d channels_last input stays channels_last; anything else is made contiguous. Float32 and
// float64 inputs (the caller casts half types). Per-channel results are float64, summed in a
// fixed order: the same for any number of intra-op threads.
#include <utility>

#include <ATen/Tensor.h>

namespace slidetrain::dist::bn {

/// Per-channel sum and sum of squares of `x` ([N, C, *]) as float64 [C] tensors, in one pass,
/// accumulated in float64 (how the batch is split over ranks must not show in the sums). Each
/// block of up to 1024 values is summed around its first value, so E[x^2] - E[x]^2 keeps its
/// digits when |mean| >> std.
std::pair<at::Tensor, at::Tensor> channelSums(const at::Tensor& x);

/// x * scale[c] + shift[c] (scale, shift: float64 [C]), in x's layout and dtype.
at::Tensor channelAffine(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift);

/// Per-channel sum(dy) and sum(dy * (x - mean[c])) (float64 [C], accumulated in float64), in one
/// pass over dy and x (dy in x's layout; mean: float64 [C]).
std::pair<at::Tensor, at::Tensor> gradSums(const at::Tensor& dy, const at::Tensor& x,
                                           const at::Tensor& mean);

/// dy * a[c] + x * b[c] + c[c] (float64 [C] coefficients), in x's layout and dtype.
at::Tensor gradAffine(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& a,
                      const at::Tensor& b, const at::Tensor& c);

}  // namespace slidetrain::dist::bn
