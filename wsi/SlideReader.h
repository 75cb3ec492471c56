#pragma once
// Internal to the wsi layer: the backend interface behind Slide. A reader is immutable after it
// is opened, so one reader serves concurrent readRegion calls from many threads.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wsi/Slide.h"

namespace slidetrain::wsi::detail {

class SlideReader {
 public:
  virtual ~SlideReader() = default;

  std::string path;
  std::string backend;  ///< "openslide" or "vips"
  std::string vendor;
  std::vector<std::array<int64_t, 2>> dimensions;  ///< per level
  std::vector<double> downsamples;                 ///< per level
  std::map<std::string, std::string> properties;
  std::optional<double> recordedMpp;  ///< level-0 mpp the file records, when plausible
  std::array<uint8_t, 3> background{255, 255, 255};

  virtual std::vector<std::string> associatedImageNames() const { return {}; }
  virtual RgbImage associatedImage(const std::string& name) const;
  /// Fills `out` (already sized w x h) with the region; level and size are already validated.
  virtual void readRegion(int64_t x, int64_t y, int level, int w, int h, RgbImage& out) const = 0;
};

/// Opens with OpenSlide. Returns nullptr (and sets *whyNot) when OpenSlide does not recognise the
/// file or recognises it but fails to open it; never throws for an unsupported file.
std::unique_ptr<SlideReader> openWithOpenSlide(const std::string& path,
                                               const std::array<uint8_t, 3>& background,
                                               std::string* whyNot);
/// Opens with libvips (first page/image) and probes one pixel so that files whose header
/// parses but whose pixels cannot be decoded are refused here. nullptr + *whyNot on failure.
std::unique_ptr<SlideReader> openWithVips(const std::string& path,
                                          const std::array<uint8_t, 3>& background,
                                          std::string* whyNot);

/// Converts premultiplied ARGB (OpenSlide's pixel format) to RGB over `background`: pixels are
/// first un-premultiplied (rounded, as openslide-python does) and then alpha-composited.
void argbToRgb(const uint32_t* argb, size_t count, const std::array<uint8_t, 3>& background,
               uint8_t* rgb);

/// Level-0 mpp from TIFF resolution tags (value + unit "centimeter"/"inch"/"cm"), or nullopt
/// when the unit is missing or the value is implausible for microscopy (see the .cpp).
std::optional<double> mppFromResolution(double pixelsPerUnit, const std::string& unit);

/// Starts libvips once per process (VIPS_INIT is not re-entrant).
void ensureVips();

/// "'file' level L region (x=.., y=.., w=.., h=..)" for error messages.
std::string describeRegion(const std::string& path, int level, int64_t x, int64_t y, int64_t w,
                           int64_t h);

}  // namespace slidetrain::wsi::detail
