#pragma once
// What a TIFF file holds before any reader turns it into 8-bit RGB: bits and samples per pixel,
// photometric interpretation, and how many pages have the full size of page 0 (more than one: a
// multi-page stack - an OME-TIFF series, a multiplex channel stack - not a pyramid, whose further
// pages are smaller). Tiling uses it to say why a slide yields no patches.
#include <memory>
#include <optional>
#include <string>

typedef struct tiff TIFF;

namespace slidetrain::wsi {

struct TiffLayout {
  int bitsPerSample = 8;
  int samplesPerPixel = 3;
  int photometric = 2;  ///< TIFF PHOTOMETRIC_* (2 = RGB, 1 = min-is-black, 6 = YCbCr)
  int fullSizePages = 1;
  /// 8 bits and 3 (or 4) samples: what brightfield tissue detection and the models expect.
  bool rgb8() const { return bitsPerSample == 8 && (samplesPerPixel == 3 || samplesPerPixel == 4); }
  /// "1 sample of 16 bits (min-is-black)", "5 samples of 16 bits", "3 samples of 8 bits".
  std::string describe() const;
};

/// nullopt when libtiff cannot open `path` (not a TIFF).
std::optional<TiffLayout> readTiffLayout(const std::string& path);

namespace detail {
struct TiffCloser {
  void operator()(TIFF* t) const;
};
/// Opens read-only with libtiff's messages captured instead of printed; nullptr and *error set
/// on failure.
std::unique_ptr<TIFF, TiffCloser> openTiffQuietly(const std::string& path, std::string* error);
}  // namespace detail

}  // namespace slidetrain::wsi
