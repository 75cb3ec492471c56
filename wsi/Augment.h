#pragma once
// Seeded patch augmentation on uint8 RGB pixels, run in the stream's worker threads. The result
// depends only on the 64-bit seed the caller derives from (seed, epoch, patch id), so it is the
// same for any world size or thread count. Every random number is drawn in a fixed order
// whatever the options, so switching one augmentation on or off never changes another's draw.
//
// Order of application: stain normalisation (Reinhard), flips / 90° rotations, small affine
// (rotation, shift, scale; bilinear, mirrored border), brightness / contrast / saturation, hue,
// HED stain jitter, Gaussian blur, sharpening, Gaussian noise. Mean/std normalisation to float
// happens later, when the batch becomes a tensor (src/BatchTensor).
#include <array>
#include <cstdint>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

enum class StainNorm { None, Reinhard };

struct AugmentOptions {
  bool flips = true;
  bool rot90 = true;
  double brightness = 0;  ///< multiplicative jitter amplitude: v *= 1 + U(-a, a)
  double contrast = 0;    ///< around the patch mean
  double saturation = 0;  ///< around the pixel grey value
  double hue = 0;         ///< rotation of the hue circle, fraction in [-a, a]
  double rotate = 0;      ///< small rotation, degrees: angle ~ U(-a, a)
  double shift = 0;       ///< translation per axis ~ U(-a, a) * patch side
  double scale = 0;       ///< zoom ~ 1 + U(-a, a)
  double hed = 0;         ///< HED jitter: each stain s -> s * (1 + U(-a, a)) + U(-a, a)
  double blur = 0;        ///< Gaussian blur, sigma ~ U(0, a) px (skipped below 0.2 px)
  double sharpen = 0;     ///< unsharp amount ~ U(0, a) (3x3 Laplacian)
  double noise = 0;       ///< Gaussian noise, std ~ U(0, a) in 0..255 units
  StainNorm stainNorm = StainNorm::None;
  /// Reinhard target: per-channel mean and std in CIELAB (L 0..100). Defaults are typical of
  /// H&E; reinhardTarget() computes them from a reference patch.
  std::array<double, 3> reinhardMean{68.0, 22.0, -14.0};
  std::array<double, 3> reinhardStd{14.0, 9.0, 7.0};

  bool any() const {
    return flips || rot90 || brightness > 0 || contrast > 0 || saturation > 0 || hue > 0 ||
           rotate > 0 || shift > 0 || scale > 0 || hed > 0 || blur > 0 || sharpen > 0 ||
           noise > 0 || stainNorm != StainNorm::None;
  }
  void validate() const;
};

/// Augments a square patch in place.
void augmentPatch(RgbImage& img, const AugmentOptions& options, uint64_t seed);

/// Reinhard normalisation of `img` to a CIELAB mean/std target (deterministic, no randomness).
void reinhardNormalize(RgbImage& img, const std::array<double, 3>& mean,
                       const std::array<double, 3>& std);
/// CIELAB per-channel mean and std of a reference image, to use as a Reinhard target.
void reinhardTarget(const RgbImage& reference, std::array<double, 3>* mean,
                    std::array<double, 3>* std);

}  // namespace slidetrain::wsi
