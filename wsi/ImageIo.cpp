#include "wsi/ImageIo.h"

#include <vips/vips8>

#include "wsi/Errors.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {

RgbImage readImageFile(const std::string& path) {
  detail::ensureVips();
  try {
    // Sequential access: each image is decoded once, top to bottom (no whole-file cache).
    vips::VImage v = vips::VImage::new_from_file(
        path.c_str(), vips::VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
    if (v.has_alpha())
      v = v.flatten(vips::VImage::option()->set("background", std::vector<double>{255, 255, 255}));
    // Grey, 16-bit, CMYK and other interpretations to 8-bit sRGB (scaling 16-bit samples).
    if (v.interpretation() != VIPS_INTERPRETATION_sRGB || v.format() != VIPS_FORMAT_UCHAR)
      v = v.colourspace(VIPS_INTERPRETATION_sRGB);
    if (v.bands() > 3) v = v.extract_band(0, vips::VImage::option()->set("n", 3));
    if (v.format() != VIPS_FORMAT_UCHAR) v = v.cast(VIPS_FORMAT_UCHAR);
    if (v.bands() != 3)
      throw DataError("cannot read image '" + path + "': " + std::to_string(v.bands()) +
                      " bands after conversion to sRGB");
    RgbImage img;
    img.width = v.width();
    img.height = v.height();
    size_t bytes = 0;
    void* mem = v.write_to_memory(&bytes);
    const bool ok = bytes == static_cast<size_t>(img.width) * img.height * 3;
    if (ok) img.pixels.assign(static_cast<uint8_t*>(mem), static_cast<uint8_t*>(mem) + bytes);
    g_free(mem);
    if (!ok) throw DataError("cannot read image '" + path + "': unexpected decoded size");
    return img;
  } catch (const vips::VError& e) {
    vips_error_clear();
    throw SlideError("cannot read image '" + path + "': " + e.what());
  }
}

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
