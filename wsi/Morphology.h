#pragma once
// Small image-processing kernels on 8-bit single-channel images (tissue masks are computed on
// thumbnails of at most a few megapixels, so plain loops are fast enough). Borders replicate
// the edge pixel unless stated otherwise.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace slidetrain::wsi {

/// Gray8 or binary (0/1) image, row-major.
struct Plane {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> data;
  uint8_t& at(int x, int y) { return data[static_cast<size_t>(y) * width + x]; }
  uint8_t at(int x, int y) const { return data[static_cast<size_t>(y) * width + x]; }
};

/// Median over a (2r+1)^2 square window (Huang's sliding histogram, O(r) per pixel).
Plane medianBlur(const Plane& in, int radius);
/// Binary dilation with a (2r+1)^2 square; pixels outside the image count as 0.
Plane dilate(const Plane& in, int radius);
/// Binary erosion with a (2r+1)^2 square; pixels outside the image count as 1, so that closing
/// never eats tissue that touches the image border.
Plane erode(const Plane& in, int radius);
/// Closing = erode(dilate(x)): bridges gaps narrower than about 2r+1 pixels.
Plane close(const Plane& in, int radius);
/// Clears 8-connected components of 1s smaller than `minArea` pixels.
void removeSmallComponents(Plane& mask, int minArea);
/// Sets to 1 every 0 pixel not 4-connected to the image border (holes inside tissue).
void fillHoles(Plane& mask);

}  // namespace slidetrain::wsi
