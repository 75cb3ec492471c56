#pragma once
// TissueMask: a binary tissue mask at thumbnail resolution (Otsu on HSV saturation, then
// morphology), used to keep only patches over tissue.
#include <cstdint>
#include <string>
#include <vector>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

struct TissueMaskOptions {
  /// Pyramid level the mask is computed on; -1 = auto: the level whose downsample is nearest 32x
  /// (log scale; ties go to the finer level). The level is read whole and shrunk to fit
  /// thumbnailMaxSide when it is larger, so thumbnailMaxSide always wins (it bounds memory).
  int level = -1;
  int thumbnailMaxSide = 2048;  ///< longer side of the thumbnail the mask is computed on
  double threshold = -1;        ///< threshold in [0,255] on the signal below; < 0 means Otsu
  /// Slide background: "bright" (brightfield: white glass; signal = HSV saturation), "dark"
  /// (fluorescence: black background; signal = brightness, max of R, G, B), or "auto": dark when
  /// the median brightness of the thumbnail is below kDarkMedian. On a dark background the
  /// near-black noise is highly saturated, which made fluorescence slides 100 % tissue.
  std::string background = "auto";
  int medianRadius = 2;         ///< median blur radius in thumbnail pixels (0 = off)
  int closeRadius = 2;          ///< morphological close radius (0 = off)
  int minComponentArea = 16;    ///< drop connected components smaller than this (thumbnail px)
  bool fillHoles = true;
  /// A user mask (PNG, any size, scaled to the slide; non-zero in any colour band = tissue) used
  /// instead of computing one; empty = compute. The Otsu/morphology options are then unused.
  std::string maskFile;
  void validate() const;
};

class TissueMask {
 public:
  /// Median brightness (max of R, G, B) below which "auto" takes the background for dark.
  static constexpr int kDarkMedian = 64;
  /// Computes the mask on the level chosen by options.level, or reads options.maskFile.
  static TissueMask compute(const Slide& slide, const TissueMaskOptions& options = {});
  /// The level auto mode (options.level = -1) uses: downsample nearest 32x.
  static int autoLevel(const Slide& slide);
  /// Reads a user mask PNG and scales it (nearest neighbour) to a thumbnail of the slide whose
  /// longer side is min(the PNG's longer side, options.thumbnailMaxSide). Throws DataError naming
  /// the PNG when it cannot be read.
  static TissueMask fromUserMask(const Slide& slide, const std::string& pngPath,
                                 const TissueMaskOptions& options = {});
  /// Builds a mask from an RGB image already in hand (downsample = level-0 px per mask px).
  static TissueMask fromImage(const RgbImage& thumb, double downsample,
                              const TissueMaskOptions& options = {});

  int width() const { return width_; }
  int height() const { return height_; }
  double downsample() const { return downsample_; }
  /// Threshold that was applied to the signal (Otsu's choice when automatic).
  double threshold() const { return threshold_; }
  /// True when the mask was computed for a dark (fluorescence) background.
  bool darkField() const { return darkField_; }
  bool at(int x, int y) const { return mask_[static_cast<size_t>(y) * width_ + x] != 0; }
  /// Fraction of tissue in a level-0 rectangle.
  double fraction(int64_t x0, int64_t y0, int64_t w, int64_t h) const;
  /// Fraction of the thumbnail under a level-0 rectangle whose pixels are white (every channel >
  /// threshold) or black (every channel < threshold), area-weighted like fraction().
  double whiteFraction(int64_t x0, int64_t y0, int64_t w, int64_t h, int threshold = 220) const;
  double blackFraction(int64_t x0, int64_t y0, int64_t w, int64_t h, int threshold = 30) const;
  /// Fraction of tissue over the whole mask.
  double tissueFraction() const;
  /// Writes a PNG with the mask drawn over the thumbnail (QC picture).
  /// `thumb` (any size) with the tissue tinted green and outlined in green: the QC picture.
  RgbImage qcImage(const RgbImage& thumb) const;
  void writeQc(const RgbImage& thumb, const std::string& pngPath) const;
  const RgbImage& thumbnail() const { return thumb_; }
  /// True when the mask came from a user PNG.
  bool fromUser() const { return fromUser_; }

 private:
  template <typename Pred>
  double areaFraction(int64_t x0, int64_t y0, int64_t w, int64_t h, Pred inside) const;
  bool fromUser_ = false;
  int width_ = 0, height_ = 0;
  double downsample_ = 1, threshold_ = 0;
  bool darkField_ = false;
  std::vector<uint8_t> mask_;
  RgbImage thumb_;
};

/// Otsu's threshold of a 256-bin histogram.
int otsuThreshold(const std::vector<uint64_t>& histogram);

}  // namespace slidetrain::wsi
