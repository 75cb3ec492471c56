#pragma once
// Writing RGB images (QC pictures, heatmaps) with libvips.
#include <string>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

/// Writes `img` as PNG; throws DataError naming the file (and `what` it is) on failure.
void writePng(const RgbImage& img, const std::string& path, const std::string& what = "image");

}  // namespace slidetrain::wsi
