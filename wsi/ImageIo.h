#pragma once
// Reading patch images (patch folders) and writing images (QC pictures, heatmaps, heatmap TIFFs
// for slide viewers) with libvips.
#include <cstdint>
#include <string>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

/// Decodes a PNG/JPEG (any format libvips reads) to 8-bit RGB: grey is replicated, an alpha
/// channel is composited over white, 16-bit samples are scaled to 8 bits. Throws SlideError
/// naming the file when it cannot be read (without libvips: always, saying so).
RgbImage readImageFile(const std::string& path);

/// Writes `img` as PNG; throws DataError naming the file (and `what` it is) on failure.
void writePng(const RgbImage& img, const std::string& path, const std::string& what = "image");

/// Options of writePyramidTiff.
struct PyramidTiffOptions {
  double pixelsPerMm = 0;   ///< XResolution/YResolution (written per centimetre); 0 = libvips' 1/mm
  std::string description;  ///< ImageDescription of the full-resolution level ("" = none)
  int tileSize = 256;
};

/// Writes an 8-bit RGBA image (unassociated alpha) as a tiled, deflate-compressed pyramidal TIFF:
/// the full image, then levels of half the size each until one fits in a tile (libvips
/// tiffsave pyramid; each level takes the top-left pixel of every 2x2 block, so the colours stay
/// those of the image and transparent neighbours darken nothing). OpenSlide opens it as
/// generic-tiff. Throws DataError naming the file; without libvips, SlideError saying so.
void writePyramidTiff(const uint8_t* rgba, int width, int height, const std::string& path,
                      const PyramidTiffOptions& options = {});

}  // namespace slidetrain::wsi
