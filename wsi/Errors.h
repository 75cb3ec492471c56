#pragma once
// Error types of the wsi layer. C library errors (OpenSlide, libvips, libtiff) are turned into
// these exactly once, in the wrapper that called the library, with the file and region named.
#include <stdexcept>
#include <string>

namespace slidetrain::wsi {

/// A slide could not be opened or read. what() names the file (and level/region when relevant).
struct SlideError : std::runtime_error {
  explicit SlideError(const std::string& msg) : std::runtime_error(msg) {}
};

/// A cohort/annotation/index file is malformed. what() names the file and line.
struct DataError : std::runtime_error {
  explicit DataError(const std::string& msg) : std::runtime_error(msg) {}
};

}  // namespace slidetrain::wsi
