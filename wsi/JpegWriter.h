#pragma once
// Encoding images as JPEG in memory with libjpeg (both builds, with or without libvips): the
// heatmap previews that report.html carries inline.
#include <string>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

/// `img` as a baseline JPEG file's bytes at `quality` (1..100, libjpeg's scale). Throws
/// DataError with libjpeg's message on failure (an empty image, for one).
std::string encodeJpeg(const RgbImage& img, int quality = 85);

}  // namespace slidetrain::wsi
