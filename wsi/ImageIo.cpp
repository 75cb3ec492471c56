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

}  // namespace slidetrain::wsi
