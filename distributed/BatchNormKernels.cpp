// SyncBatchNorm's CPU kernels: see BatchNormKernels.h. Reductions accumulate in float64 (the
// partition of the global batch over ranks must not show in the sums: world-size invariance) and
// keep kLanes independent partial sums per block so that GCC and Clang vectorise them without
// -ffast-math (a single running sum would pin the order of the additions).
#include "distributed/BatchNormKernels.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

namespace slidetrain::dist::bn {
namespace {

constexpr int kLanes = 8;
constexpr int64_t kBlock = 1024;    ///< values of one plane summed around one shift value
constexpr int64_t kChunkRows = 256;  ///< rows of channels summed around one shift row
constexpr int64_t kGrainValues = 1 << 15;  ///< values per parallel task, at least

/// The memory the kernels walk: `rows` = [outer, C] (channels innermost), else [outer, C, inner].
struct Shape {
  bool rows = false;
  int64_t outer = 0, channels = 0, inner = 1;
};

bool isChannelsLast(const at::Tensor& x) {
  return x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

/// x itself when it is channels_last or contiguous, else a contiguous copy.
at::Tensor prepared(const at::Tensor& x) {
  if (x.dim() < 2) throw std::invalid_argument("BatchNorm kernels: expected [N, C, ...], got " + c10::str(x.sizes()));
  if (x.scalar_type() != at::kFloat && x.scalar_type() != at::kDouble)
    throw std::invalid_argument(std::string("BatchNorm kernels: float32 or float64 input expected, got ") +
                                c10::toString(x.scalar_type()));
  return isChannelsLast(x) ? x : x.contiguous();
}

/// `t` in the layout of `x` (a prepared tensor).
at::Tensor like(const at::Tensor& t, const at::Tensor& x) {
  if (t.sizes() != x.sizes() || t.scalar_type() != x.scalar_type())
    throw std::invalid_argument("BatchNorm kernels: gradient " + c10::str(t.sizes()) + " " +
                                c10::toString(t.scalar_type()) + " does not match the input " +
                                c10::str(x.sizes()) + " " + c10::toString(x.scalar_type()));
  return t.contiguous(isChannelsLast(x) ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous);
}

Shape shapeOf(const at::Tensor& x) {
  Shape s;
  s.channels = x.size(1);
  if (isChannelsLast(x)) {
    s.rows = true;
    s.outer = s.channels > 0 ? x.numel() / s.channels : 0;
    return s;
  }
  s.outer = x.size(0);
  for (int64_t d = 2; d < x.dim(); ++d) s.inner *= x.size(d);
  if (s.inner == 1) {  // [N, C] or [N, C, 1, ...]: the same bytes as rows of channels
    s.rows = true;
  }
  return s;
}

std::vector<double> toVector(const at::Tensor& v, int64_t channels, const char* what) {
  const at::Tensor d = v.to(at::kDouble).contiguous();
  if (d.numel() != channels)
    throw std::invalid_argument(std::string("BatchNorm kernels: ") + what + " has " + std::to_string(d.numel()) +
                                " values for " + std::to_string(channels) + " channels");
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + channels);
}

int64_t grainOf(int64_t valuesPerItem) { return std::max<int64_t>(1, kGrainValues / std::max<int64_t>(1, valuesPerItem)); }

// ----- statistics -----------------------------------------------------------------------------

/// Sum and sum of squares of p[0, len), block by block around each block's first value.
template <typename T>
void planeSums(const T* p, int64_t len, double& s1, double& s2) {
  for (int64_t b = 0; b < len; b += kBlock) {
    const int64_t e = std::min(len, b + kBlock);
    const double k = p[b];
    double a1[kLanes] = {}, a2[kLanes] = {};
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const double d = static_cast<double>(p[i + j]) - k;
        a1[j] += d;
        a2[j] += d * d;
      }
    double t1 = 0, t2 = 0;
    for (; i < e; ++i) {
      const double d = static_cast<double>(p[i]) - k;
      t1 += d;
      t2 += d * d;
    }
    for (int j = 0; j < kLanes; ++j) t1 += a1[j], t2 += a2[j];
    const double m = static_cast<double>(e - b), kd = k, d1 = t1, d2 = t2;
    s1 += d1 + m * kd;
    s2 += d2 + 2 * kd * d1 + m * kd * kd;
  }
}

template <typename T>
void sumsPlanes(const T* x, const Shape& s, double* s1, double* s2) {
  const int64_t C = s.channels;
  at::parallel_for(0, C, grainOf(s.outer * s.inner), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double a = 0, b = 0;
      for (int64_t n = 0; n < s.outer; ++n) planeSums(x + (n * C + c) * s.inner, s.inner, a, b);
      s1[c] = a, s2[c] = b;
    }
  });
}

template <typename T>
void sumsRows(const T* x, const Shape& s, double* s1, double* s2) {
  const int64_t C = s.channels, chunks = (s.outer + kChunkRows - 1) / kChunkRows;
  std::vector<double> part(static_cast<size_t>(2 * chunks * C));
  at::parallel_for(0, chunks, grainOf(kChunkRows * C), [&](int64_t b, int64_t e) {
    std::vector<double> k(static_cast<size_t>(C)), a1(k.size()), a2(k.size());
    for (int64_t chunk = b; chunk < e; ++chunk) {
      const int64_t r0 = chunk * kChunkRows, r1 = std::min(s.outer, r0 + kChunkRows);
      std::copy(x + r0 * C, x + (r0 + 1) * C, k.begin());
      std::fill(a1.begin(), a1.end(), 0.0);
      std::fill(a2.begin(), a2.end(), 0.0);
      double* A1 = a1.data();
      double* A2 = a2.data();
      const double* K = k.data();
      for (int64_t r = r0; r < r1; ++r) {
        const T* row = x + r * C;
        for (int64_t c = 0; c < C; ++c) {
          const double d = static_cast<double>(row[c]) - K[c];
          A1[c] += d;
          A2[c] += d * d;
        }
      }
      const double m = static_cast<double>(r1 - r0);
      double* p1 = part.data() + 2 * chunk * C;
      double* p2 = p1 + C;
      for (int64_t c = 0; c < C; ++c) {
        const double kd = K[c], d1 = A1[c], d2 = A2[c];
        p1[c] = d1 + m * kd;
        p2[c] = d2 + 2 * kd * d1 + m * kd * kd;
      }
    }
  });
  for (int64_t chunk = 0; chunk < chunks; ++chunk)  // into zeroed s1, s2; a fixed order: any thread count, same sums
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += part[static_cast<size_t>(2 * chunk * C + c)];
      s2[c] += part[static_cast<size_t>((2 * chunk + 1) * C + c)];
    }
}

// ----- gradient sums ------------------------------------------------------------------------

template <typename T>
void planeGradSums(const T* dy, const T* x, int64_t len, double mean, double& s1, double& s2) {
  for (int64_t b = 0; b < len; b += kBlock) {
    const int64_t e = std::min(len, b + kBlock);
    double a1[kLanes] = {}, a2[kLanes] = {};
    int64_t i = b;
    for (; i + kLanes <= e; i += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const double g = dy[i + j];
        a1[j] += g;
        a2[j] += g * (static_cast<double>(x[i + j]) - mean);
      }
    double t1 = 0, t2 = 0;
    for (; i < e; ++i) {
      const double g = dy[i];
      t1 += g;
      t2 += g * (static_cast<double>(x[i]) - mean);
    }
    for (int j = 0; j < kLanes; ++j) t1 += a1[j], t2 += a2[j];
    s1 += t1;
    s2 += t2;
  }
}

template <typename T>
void gradSumsPlanes(const T* dy, const T* x, const Shape& s, const double* mean, double* s1, double* s2) {
  const int64_t C = s.channels;
  at::parallel_for(0, C, grainOf(s.outer * s.inner), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double a = 0, b = 0;
      for (int64_t n = 0; n < s.outer; ++n) {
        const int64_t off = (n * C + c) * s.inner;
        planeGradSums(dy + off, x + off, s.inner, mean[c], a, b);
      }
      s1[c] = a, s2[c] = b;
    }
  });
}

template <typename T>
void gradSumsRows(const T* dy, const T* x, const Shape& s, const double* mean, double* s1, double* s2) {
  const int64_t C = s.channels, chunks = (s.outer + kChunkRows - 1) / kChunkRows;
  std::vector<double> part(static_cast<size_t>(2 * chunks * C));
  at::parallel_for(0, chunks, grainOf(kChunkRows * C), [&](int64_t b, int64_t e) {
    std::vector<double> a1(static_cast<size_t>(C)), a2(a1.size());
    for (int64_t chunk = b; chunk < e; ++chunk) {
      std::fill(a1.begin(), a1.end(), 0.0);
      std::fill(a2.begin(), a2.end(), 0.0);
      double* A1 = a1.data();
      double* A2 = a2.data();
      const double* M = mean;
      const int64_t r0 = chunk * kChunkRows, r1 = std::min(s.outer, r0 + kChunkRows);
      for (int64_t r = r0; r < r1; ++r) {
        const T* g = dy + r * C;
        const T* v = x + r * C;
        for (int64_t c = 0; c < C; ++c) {
          A1[c] += g[c];
          A2[c] += static_cast<double>(g[c]) * (static_cast<double>(v[c]) - M[c]);
        }
      }
      double* p1 = part.data() + 2 * chunk * C;
      for (int64_t c = 0; c < C; ++c) p1[c] = A1[c], p1[C + c] = A2[c];
    }
  });
  for (int64_t chunk = 0; chunk < chunks; ++chunk)  // into zeroed s1, s2
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += part[static_cast<size_t>(2 * chunk * C + c)];
      s2[c] += part[static_cast<size_t>((2 * chunk + 1) * C + c)];
    }
}

// ----- elementwise -------------------------------------------------------------------------

/// out = a * u + b (+ c * v when v is given), per channel.
template <typename T>
void affine(const T* u, const T* v, T* out, const Shape& s, const std::vector<double>& ad,
            const std::vector<double>& bd, const std::vector<double>& cd) {
  const int64_t C = s.channels;
  const std::vector<T> A(ad.begin(), ad.end()), B(bd.begin(), bd.end());
  const std::vector<T> Cc(cd.begin(), cd.end());
  if (s.rows) {
    at::parallel_for(0, s.outer, grainOf(C), [&](int64_t r0, int64_t r1) {
      const T* a = A.data();
      const T* b = B.data();
      const T* c = Cc.data();
      for (int64_t r = r0; r < r1; ++r) {
        const T* ur = u + r * C;
        T* o = out + r * C;
        if (v) {
          const T* vr = v + r * C;
          for (int64_t k = 0; k < C; ++k) o[k] = ur[k] * a[k] + vr[k] * c[k] + b[k];
        } else {
          for (int64_t k = 0; k < C; ++k) o[k] = ur[k] * a[k] + b[k];
        }
      }
    });
    return;
  }
  at::parallel_for(0, s.outer * C, grainOf(s.inner), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t k = p % C;
      const T a = A[static_cast<size_t>(k)], b = B[static_cast<size_t>(k)];
      const T* up = u + p * s.inner;
      T* o = out + p * s.inner;
      if (v) {
        const T c = Cc[static_cast<size_t>(k)];
        const T* vp = v + p * s.inner;
        for (int64_t i = 0; i < s.inner; ++i) o[i] = up[i] * a + vp[i] * c + b;
      } else {
        for (int64_t i = 0; i < s.inner; ++i) o[i] = up[i] * a + b;
      }
    }
  });
}

}  // namespace

std::pair<at::Tensor, at::Tensor> channelSums(const at::Tensor& input) {
  const at::Tensor x = prepared(input);
  const Shape s = shapeOf(x);
  at::Tensor s1 = at::zeros({s.channels}, at::kDouble), s2 = at::zeros({s.channels}, at::kDouble);
  if (x.numel() == 0) return {s1, s2};
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bn::channelSums", [&] {
    if (s.rows) sumsRows(x.data_ptr<scalar_t>(), s, s1.data_ptr<double>(), s2.data_ptr<double>());
    else sumsPlanes(x.data_ptr<scalar_t>(), s, s1.data_ptr<double>(), s2.data_ptr<double>());
  });
  return {s1, s2};
}

at::Tensor channelAffine(const at::Tensor& input, const at::Tensor& scale, const at::Tensor& shift) {
  const at::Tensor x = prepared(input);
  const Shape s = shapeOf(x);
  at::Tensor out = at::empty_like(x);
  if (x.numel() == 0) return out;
  const auto a = toVector(scale, s.channels, "scale"), b = toVector(shift, s.channels, "shift");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bn::channelAffine", [&] {
    affine<scalar_t>(x.data_ptr<scalar_t>(), nullptr, out.data_ptr<scalar_t>(), s, a, b, {});
  });
  return out;
}

std::pair<at::Tensor, at::Tensor> gradSums(const at::Tensor& gradOut, const at::Tensor& input,
                                           const at::Tensor& mean) {
  const at::Tensor x = prepared(input);
  const at::Tensor dy = like(gradOut, x);
  const Shape s = shapeOf(x);
  at::Tensor s1 = at::zeros({s.channels}, at::kDouble), s2 = at::zeros({s.channels}, at::kDouble);
  if (x.numel() == 0) return {s1, s2};
  const auto m = toVector(mean, s.channels, "mean");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bn::gradSums", [&] {
    if (s.rows)
      gradSumsRows(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), s, m.data(), s1.data_ptr<double>(),
                   s2.data_ptr<double>());
    else
      gradSumsPlanes(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), s, m.data(), s1.data_ptr<double>(),
                     s2.data_ptr<double>());
  });
  return {s1, s2};
}

at::Tensor gradAffine(const at::Tensor& gradOut, const at::Tensor& input, const at::Tensor& a,
                      const at::Tensor& b, const at::Tensor& c) {
  const at::Tensor x = prepared(input);
  const at::Tensor dy = like(gradOut, x);
  const Shape s = shapeOf(x);
  at::Tensor out = at::empty_like(x);
  if (x.numel() == 0) return out;
  const auto av = toVector(a, s.channels, "a"), bv = toVector(b, s.channels, "b"),
             cv = toVector(c, s.channels, "c");
  // out = dy * a + c + x * b: affine's u = dy, v = x, its b = c and its c = b.
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "bn::gradAffine", [&] {
    affine<scalar_t>(dy.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), s, av, cv, bv);
  });
  return out;
}

}  // namespace slidetrain::dist::bn
