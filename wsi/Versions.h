#pragma once
// Versions of the slide libraries linked in, for `slidetrain --version`.
#include <string>
#include <vector>

namespace slidetrain::wsi {

/// "OpenSlide 3.4.1", "libvips 8.14.1", "LIBTIFF, Version 4.5.0", "libjpeg API 62".
std::vector<std::string> libraryVersions();

}  // namespace slidetrain::wsi
