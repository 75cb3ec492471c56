#pragma once
// Resample: patches at a requested resolution. A patch asked for at a target mpp (or
// magnification) is read at the coarsest pyramid level that is at or finer than the target
// (within kResolutionTolerance) and resized with libvips to exactly the requested side, so its
// resolution is the target's within 1 %. Level-only requests (no target) read `size` pixels at
// the given level and never resample.
#include <cstdint>
#include <optional>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

/// A level whose resolution is within this relative distance of the target counts as the target:
/// it is read without resampling (the patch's mpp is then within 1 % of the target).
constexpr double kResolutionTolerance = 0.01;

/// Where to read a patch and how big, for one slide.
struct PatchGeometry {
  int level = 0;               ///< pyramid level read
  int size = 0;                ///< output side in pixels
  int readSize = 0;            ///< side read at `level`; == size when no resampling is needed
  double levelDownsample = 1;  ///< level-0 pixels per `level` pixel
  double mpp = 0;              ///< microns per output pixel; 0 when the slide's mpp is unknown
  /// Level-0 pixels per output pixel.
  double levelZeroPerPixel() const { return double(readSize) * levelDownsample / size; }
  bool resamples() const { return readSize != size; }
};

/// Chooses level and read size. With `targetMpp` the slide's mpp is required (Slide::requireMpp,
/// whose error says how to give one); with `targetMagnification` the objective power is required
/// (target downsample = objective power / magnification). Without either, `level` is used as is.
/// A target finer than level 0 reads level 0 and upsamples. Throws SlideError naming the file.
PatchGeometry resolvePatchGeometry(const Slide& slide, int size, int level,
                                   std::optional<double> targetMpp,
                                   std::optional<double> targetMagnification);

/// Reads a readSize x readSize region of `level` whose top-left is (x0, y0) in level-0 pixels
/// and resizes it to exactly outSize x outSize with libvips (vips_resize, Lanczos-3 kernel,
/// which anti-aliases when shrinking). readSize == outSize returns the region unchanged.
/// Thread-safe. Throws SlideError naming the file, level and region.
RgbImage readPatch(const Slide& slide, int64_t x0, int64_t y0, int level, int readSize,
                   int outSize);

/// Resizes an RGB image to exactly outWidth x outHeight (Lanczos-3, libvips).
RgbImage resizeRgb(const RgbImage& in, int outWidth, int outHeight);

}  // namespace slidetrain::wsi
