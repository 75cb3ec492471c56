// Resample: level choice for a target resolution, and exact-size patch resizing with libvips.
#include "wsi/Resample.h"

#ifdef SLIDETRAIN_WITH_VIPS
#include <vips/vips8>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "wsi/Errors.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {

PatchGeometry resolvePatchGeometry(const Slide& slide, int size, int level,
                                   std::optional<double> targetMpp,
                                   std::optional<double> targetMagnification) {
  if (size < 1) throw SlideError("slide '" + slide.path() + "': patch size must be positive");
  PatchGeometry g;
  g.size = size;
  const std::optional<double> mpp0 = slide.mpp();
  if (!targetMpp && !targetMagnification) {
    g.level = level;
    g.levelDownsample = slide.levelDownsample(level);  // throws naming the slide and level
    g.readSize = size;
    g.mpp = mpp0 ? *mpp0 * g.levelDownsample : 0;
    return g;
  }
  double targetDownsample = 0;  // level-0 pixels per output pixel
  if (targetMpp) {
    if (!(*targetMpp > 0)) throw SlideError("tiling.target_mpp must be positive");
    double m0 = 0;
    try {
      m0 = slide.requireMpp();
    } catch (const SlideError& e) {
      throw SlideError(std::string("tiling.target_mpp is set, so the slide's mpp is needed: ") +
                       e.what());
    }
    targetDownsample = *targetMpp / m0;
  } else {
    if (!(*targetMagnification > 0))
      throw SlideError("tiling.target_magnification must be positive");
    const std::optional<double> power = slide.objectivePower();
    if (!power)
      throw SlideError("slide '" + slide.path() +
                       "' records no objective power, so tiling.target_magnification cannot be "
                       "used; HINT: set tiling.target_mpp instead (with tiling.mpp_override or an "
                       "`mpp` cohort column when the slide records no mpp)");
    targetDownsample = *power / *targetMagnification;
  }
  // Coarsest level at or finer than the target (pyramid levels need not be sorted).
  g.level = 0;
  double best = slide.levelDownsample(0);
  for (int l = 1; l < slide.levelCount(); ++l) {
    const double ds = slide.levelDownsample(l);
    if (ds <= targetDownsample * (1 + kResolutionTolerance) && ds > best) best = ds, g.level = l;
  }
  if (best > targetDownsample * (1 + kResolutionTolerance)) {  // level 0 coarser: upsample
    g.level = 0;
  }
  g.levelDownsample = slide.levelDownsample(g.level);
  const double ratio = targetDownsample / g.levelDownsample;
  g.readSize = std::abs(ratio - 1) <= kResolutionTolerance
                   ? size
                   : int(std::max<long long>(1, std::llround(size * ratio)));
  g.mpp = mpp0 ? *mpp0 * g.levelZeroPerPixel() : 0;
  return g;
}

#ifdef SLIDETRAIN_WITH_VIPS
RgbImage resizeRgb(const RgbImage& in, int outWidth, int outHeight) {
  if (in.width <= 0 || in.height <= 0 || outWidth <= 0 || outHeight <= 0)
    throw std::invalid_argument("resizeRgb: empty input or output size");
  if (in.width == outWidth && in.height == outHeight) return in;
  detail::ensureVips();
  // A copy owned by libvips: the operation cache may keep the input image alive after we return.
  VipsImage* raw = vips_image_new_from_memory_copy(in.pixels.data(), in.pixels.size(), in.width,
                                                   in.height, 3, VIPS_FORMAT_UCHAR);
  if (!raw) {
    const std::string why = vips_error_buffer();
    vips_error_clear();
    throw std::runtime_error("resizeRgb: " + why);
  }
  vips::VImage img(raw, vips::STEAL);
  const double hs = double(outWidth) / in.width, vs = double(outHeight) / in.height;
  vips::VImage r = img.resize(
      hs, vips::VImage::option()->set("vscale", vs)->set("kernel", VIPS_KERNEL_LANCZOS3));
  // vips rounds the output size; fix a one-pixel difference by cropping or replicating the edge.
  if (r.width() > outWidth || r.height() > outHeight)
    r = r.crop(0, 0, std::min(r.width(), outWidth), std::min(r.height(), outHeight));
  if (r.width() < outWidth || r.height() < outHeight)
    r = r.embed(0, 0, outWidth, outHeight,
                vips::VImage::option()->set("extend", VIPS_EXTEND_COPY));
  if (r.format() != VIPS_FORMAT_UCHAR) r = r.cast(VIPS_FORMAT_UCHAR);
  size_t bytes = 0;
  void* mem = r.write_to_memory(&bytes);
  RgbImage out;
  out.width = outWidth;
  out.height = outHeight;
  out.pixels.resize(size_t(outWidth) * outHeight * 3);
  const bool ok = bytes == out.pixels.size();
  if (ok) std::memcpy(out.pixels.data(), mem, bytes);
  g_free(mem);
  if (!ok) throw std::runtime_error("resizeRgb: libvips returned an unexpected buffer size");
  return out;
}
#else
namespace {

double lanczos3(double x) {
  x = std::abs(x);
  if (x < 1e-12) return 1.0;
  if (x >= 3.0) return 0.0;
  const double px = M_PI * x;
  return 3.0 * std::sin(px) * std::sin(px / 3.0) / (px * px);
}

/// One axis of a separable Lanczos-3 resize: for each output index, the input indices (edge
/// replicated) and normalised weights. The kernel widens by the shrink factor (antialiasing).
struct Taps {
  std::vector<int> first, count;
  std::vector<double> w;
  std::vector<size_t> at;
};
Taps taps(int in, int out) {
  Taps t;
  const double scale = double(out) / in, stretch = std::max(1.0, 1.0 / scale), support = 3.0 * stretch;
  for (int o = 0; o < out; ++o) {
    const double centre = (o + 0.5) / scale - 0.5;
    const int lo = int(std::floor(centre - support)) + 1, hi = int(std::ceil(centre + support)) - 1;
    t.first.push_back(lo);
    t.count.push_back(hi - lo + 1);
    t.at.push_back(t.w.size());
    double sum = 0;
    for (int i = lo; i <= hi; ++i) sum += lanczos3((i - centre) / stretch);
    for (int i = lo; i <= hi; ++i) t.w.push_back(lanczos3((i - centre) / stretch) / sum);
  }
  return t;
}

}  // namespace

RgbImage resizeRgb(const RgbImage& in, int outWidth, int outHeight) {
  if (in.width <= 0 || in.height <= 0 || outWidth <= 0 || outHeight <= 0)
    throw std::invalid_argument("resizeRgb: empty input or output size");
  if (in.width == outWidth && in.height == outHeight) return in;
  // Without libvips: a separable Lanczos-3 resize in plain C++ (close to vips_resize's, not
  // bit-identical to it).
  const Taps tx = taps(in.width, outWidth), ty = taps(in.height, outHeight);
  std::vector<double> mid(size_t(outWidth) * in.height * 3);
  for (int y = 0; y < in.height; ++y)
    for (int o = 0; o < outWidth; ++o)
      for (int c = 0; c < 3; ++c) {
        double v = 0;
        for (int k = 0; k < tx.count[o]; ++k) {
          const int x = std::clamp(tx.first[o] + k, 0, in.width - 1);
          v += tx.w[tx.at[o] + k] * in.pixels[(size_t(y) * in.width + x) * 3 + c];
        }
        mid[(size_t(y) * outWidth + o) * 3 + c] = v;
      }
  RgbImage out;
  out.width = outWidth;
  out.height = outHeight;
  out.pixels.resize(size_t(outWidth) * outHeight * 3);
  for (int o = 0; o < outHeight; ++o)
    for (int x = 0; x < outWidth; ++x)
      for (int c = 0; c < 3; ++c) {
        double v = 0;
        for (int k = 0; k < ty.count[o]; ++k) {
          const int y = std::clamp(ty.first[o] + k, 0, in.height - 1);
          v += ty.w[ty.at[o] + k] * mid[(size_t(y) * outWidth + x) * 3 + c];
        }
        out.pixels[(size_t(o) * outWidth + x) * 3 + c] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
      }
  return out;
}
#endif

RgbImage readPatch(const Slide& slide, int64_t x0, int64_t y0, int level, int readSize,
                   int outSize) {
  if (readSize <= 0 || outSize <= 0)
    throw SlideError(detail::describeRegion(slide.path(), level, x0, y0, readSize, readSize) +
                     ": read size and output size must be positive (output " +
                     std::to_string(outSize) + ")");
  RgbImage region = slide.readRegion(x0, y0, level, readSize, readSize);
  if (readSize == outSize) return region;
  try {
    return resizeRgb(region, outSize, outSize);
#ifdef SLIDETRAIN_WITH_VIPS
  } catch (const vips::VError& e) {
    vips_error_clear();
    throw SlideError(detail::describeRegion(slide.path(), level, x0, y0, readSize, readSize) +
                     ": resizing to " + std::to_string(outSize) + " px failed: " + e.what());
#endif
  } catch (const std::runtime_error& e) {
    throw SlideError(detail::describeRegion(slide.path(), level, x0, y0, readSize, readSize) +
                     ": resizing to " + std::to_string(outSize) + " px failed: " + e.what());
  }
}

}  // namespace slidetrain::wsi
