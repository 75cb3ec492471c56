#include "wsi/DeepZoom.h"

#include <algorithm>
#include <cmath>

#include <vips/vips8>

#include "wsi/Errors.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {
namespace {

constexpr int kTileSize = 254;  // dzsave's default: 254 + 2 x 1 overlap = 256-pixel tiles
constexpr int kOverlap = 1;

DeepZoomLayout save(vips::VImage image, const std::string& base, const std::string& format,
                    VipsRegionShrink shrink) {
  image.dzsave(base.c_str(), vips::VImage::option()
                                 ->set("tile_size", kTileSize)
                                 ->set("overlap", kOverlap)
                                 ->set("suffix", format == "png" ? ".png" : ".jpeg[Q=85]")
                                 ->set("region_shrink", shrink));
  DeepZoomLayout l;
  l.width = image.width();
  l.height = image.height();
  l.tileSize = kTileSize;
  l.overlap = kOverlap;
  l.format = format;
  l.levels = deepZoomLevels(l.width, l.height);
  return l;
}

}  // namespace

int deepZoomLevels(int width, int height) {
  int levels = 1;
  for (int side = std::max(width, height); side > 1; side = (side + 1) / 2) ++levels;
  return levels;
}

DeepZoomLayout writeSlideDeepZoom(const std::string& slidePath, const SlideOptions& options, int maxSide,
                                  const std::string& base) {
  detail::ensureVips();
  if (maxSide <= 0) throw SlideError("slide '" + slidePath + "': viewer size must be positive");
  // The coarsest level at least maxSide along the longer side (else level 0), read lazily by
  // libvips (OpenSlide's level, or the single image of a file only libvips reads) and shrunk:
  // the whole slide is never decoded at level 0 unless level 0 is what is shown.
  const auto slide = Slide::open(slidePath, options);
  int level = 0;
  for (int l = slide->levelCount() - 1; l > 0; --l) {
    const auto d = slide->levelDimensions(l);
    if (std::max(d[0], d[1]) >= maxSide) {
      level = l;
      break;
    }
  }
  try {
    vips::VImage image =
        slide->backend() == "openslide"
            ? vips::VImage::openslideload(slidePath.c_str(), vips::VImage::option()->set("level", level))
            : vips::VImage::new_from_file(slidePath.c_str(), vips::VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
    if (image.bands() == 2 || image.bands() == 4) {
      const auto& bg = options.background;
      image = image.flatten(vips::VImage::option()->set(
          "background", std::vector<double>{double(bg[0]), double(bg[1]), double(bg[2])}));
    }
    if (image.bands() == 1) image = image.bandjoin({image, image});
    const double scale = double(maxSide) / std::max(image.width(), image.height());
    if (scale < 1) image = image.resize(scale);
    image = image.cast(VIPS_FORMAT_UCHAR);
    return save(image, base, "jpeg", VIPS_REGION_SHRINK_MEAN);
  } catch (const vips::VError& e) {
    vips_error_clear();
    throw SlideError("slide '" + slidePath + "': cannot write its deep-zoom tiles to '" + base + "_files': " +
                     e.what());
  }
}

DeepZoomLayout writeOverlayDeepZoom(const uint8_t* rgba, int width, int height, const std::string& base) {
  detail::ensureVips();
  if (width <= 0 || height <= 0)
    throw DataError("cannot write deep-zoom overlay '" + base + "': empty " + std::to_string(width) + "x" +
                    std::to_string(height) + " image");
  try {
    vips::VImage v = vips::VImage::new_from_memory(const_cast<uint8_t*>(rgba), size_t(width) * size_t(height) * 4,
                                                   width, height, 4, VIPS_FORMAT_UCHAR);
    v = v.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
    return save(v, base, "png", VIPS_REGION_SHRINK_NEAREST);
  } catch (const vips::VError& e) {
    vips_error_clear();
    throw DataError("cannot write deep-zoom overlay '" + base + "': " + e.what());
  }
}

}  // namespace slidetrain::wsi
