#include "wsi/ImageIo.h"

#include <vips/vips8>

#include "wsi/Errors.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {

void writePng(const RgbImage& img, const std::string& path, const std::string& what) {
  detail::ensureVips();
  try {
    vips::VImage v = vips::VImage::new_from_memory(const_cast<uint8_t*>(img.pixels.data()),
                                                   img.pixels.size(), img.width, img.height, 3,
                                                   VIPS_FORMAT_UCHAR);
    v.pngsave(path.c_str());
  } catch (const vips::VError& e) {
    vips_error_clear();
    throw DataError("cannot write " + what + " '" + path + "': " + e.what());
  }
}

void writePyramidTiff(const uint8_t* rgba, int width, int height, const std::string& path,
                      const PyramidTiffOptions& options) {
  detail::ensureVips();
  if (width <= 0 || height <= 0)
    throw DataError("cannot write TIFF '" + path + "': empty " + std::to_string(width) + "x" +
                    std::to_string(height) + " image");
  try {
    vips::VImage v = vips::VImage::new_from_memory(const_cast<uint8_t*>(rgba),
                                                   size_t(width) * size_t(height) * 4, width,
                                                   height, 4, VIPS_FORMAT_UCHAR);
    auto copy = vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB);
    if (options.pixelsPerMm > 0)
      copy->set("xres", options.pixelsPerMm)->set("yres", options.pixelsPerMm);
    v = v.copy(copy);
    if (!options.description.empty()) v.set(VIPS_META_IMAGEDESCRIPTION, options.description.c_str());
    v.tiffsave(path.c_str(), vips::VImage::option()
                                 ->set("tile", true)
                                 ->set("pyramid", true)
                                 ->set("tile_width", options.tileSize)
                                 ->set("tile_height", options.tileSize)
                                 ->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE)
                                 ->set("region_shrink", VIPS_REGION_SHRINK_NEAREST)
                                 ->set("resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM));
  } catch (const vips::VError& e) {
    vips_error_clear();
    throw DataError("cannot write TIFF '" + path + "': " + e.what());
  }
}

}  // namespace slidetrain::wsi
