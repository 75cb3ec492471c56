#pragma once
// Deep-zoom pyramids (the tiles OpenSeadragon shows) written with libvips' dzsave: a slide,
// shrunk to a bounded size, and RGBA overlays such as heatmaps.
#include <cstdint>
#include <string>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

/// What a viewer needs to address the tiles of a pyramid written by the functions below: level L
/// (0 = one pixel, the last = full size, Microsoft's Deep Zoom layout) is the image shrunk by
/// 2^(levels-1-L), rounded up, cut into tiles of tileSize plus `overlap` pixels on each inner side,
/// in <base>_files/L/<column>_<row>.<format>.
struct DeepZoomLayout {
  int width = 0, height = 0;  ///< the full-size level
  int tileSize = 254;
  int overlap = 1;
  std::string format;         ///< "jpeg" or "png" (the tiles' file suffix)
  int levels = 0;             ///< ceil(log2(max(width, height))) + 1
};

/// Levels of a Deep Zoom pyramid of a width x height image: down to one pixel.
int deepZoomLevels(int width, int height);

/// Writes the slide at `slidePath` as <base>.dzi and <base>_files/ with JPEG tiles (quality 85),
/// composited over `options.background`. The image is read from the coarsest level of the file at
/// least `maxSide` along its longer side and shrunk to fit `maxSide` (never enlarged), so a whole
/// level 0 is read only when it is itself at most about maxSide. Streams through libvips: memory
/// stays bounded whatever the slide. Throws SlideError naming the file; without libvips too.
DeepZoomLayout writeSlideDeepZoom(const std::string& slidePath, const SlideOptions& options, int maxSide,
                                  const std::string& base);

/// Writes an 8-bit RGBA image (unassociated alpha) as <base>.dzi and <base>_files/ with PNG tiles
/// (transparency kept); coarser levels take the top-left pixel of each 2x2 block, so the colours
/// stay those of the image (a heatmap's cells keep their colour). Throws DataError naming the file.
DeepZoomLayout writeOverlayDeepZoom(const uint8_t* rgba, int width, int height, const std::string& base);

}  // namespace slidetrain::wsi
