// The versions of the slide libraries this build runs with (slidetrain --version).
#include "wsi/Versions.h"

#include <cstdio>

#include <jpeglib.h>
#include <openslide.h>
#include <tiffio.h>
#ifdef SLIDETRAIN_WITH_VIPS
#include <vips/vips.h>
#endif

namespace slidetrain::wsi {

std::vector<std::string> libraryVersions() {
  std::vector<std::string> out;
  out.push_back(std::string("OpenSlide ") + openslide_get_version());
#ifdef SLIDETRAIN_WITH_VIPS
  out.push_back(std::string("libvips ") + vips_version_string());
#else
  out.push_back("libvips: not built (SLIDETRAIN_WITH_VIPS=OFF)");
#endif
  std::string tiff = TIFFGetVersion();
  tiff = tiff.substr(0, tiff.find('\n'));
  out.push_back(tiff);
  char jpeg[64];
  std::snprintf(jpeg, sizeof jpeg, "libjpeg API %d", JPEG_LIB_VERSION);
  out.push_back(jpeg);
  return out;
}

}  // namespace slidetrain::wsi
