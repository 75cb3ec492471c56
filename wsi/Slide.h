#pragma once
// Slide: one whole-slide image, read with OpenSlide, or with libvips when OpenSlide refuses the
// file (plain/striped TIFF, OME-TIFF first image, PNG, JPEG). Thread-safe for concurrent reads.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace slidetrain::wsi {

struct SlideOptions {
  /// Microns per pixel at level 0 to use when the file records none (or to override it).
  std::optional<double> mppOverride;
  /// Colour that transparent pixels are composited over (OpenSlide returns premultiplied ARGB).
  std::array<uint8_t, 3> background{255, 255, 255};
  /// The path is one patch image (data.source: patch_folders), not a slide: PatchStream decodes
  /// it whole (readImageFile) and resizes it to the request's size; it is never opened as a Slide.
  bool imageFile = false;
};

/// RGB image, 8 bits per channel, interleaved (HWC), row-major.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
  uint8_t* at(int x, int y) { return pixels.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* at(int x, int y) const {
    return pixels.data() + (static_cast<size_t>(y) * width + x) * 3;
  }
};

class Slide {
 public:
  /// Opens `path`; throws SlideError naming the file when neither backend can read it.
  static std::unique_ptr<Slide> open(const std::string& path, const SlideOptions& options = {});
  ~Slide();
  Slide(const Slide&) = delete;
  Slide& operator=(const Slide&) = delete;

  const std::string& path() const;
  /// "openslide" or "vips".
  const std::string& backend() const;
  /// OpenSlide vendor ("aperio", "generic-tiff", ...) or "vips".
  std::string vendor() const;

  int levelCount() const;
  /// {width, height} of a level.
  std::array<int64_t, 2> levelDimensions(int level) const;
  double levelDownsample(int level) const;
  /// Finest level whose downsample is <= `downsample` (OpenSlide's best level rule).
  int bestLevelForDownsample(double downsample) const;

  /// Level-0 microns per pixel (x), from the override, else the file; nullopt when unknown.
  std::optional<double> mpp() const;
  /// Like mpp() but throws SlideError that says how to provide it when unknown.
  double requireMpp() const;
  std::optional<double> objectivePower() const;

  const std::map<std::string, std::string>& properties() const;
  std::vector<std::string> associatedImageNames() const;
  RgbImage associatedImage(const std::string& name) const;

  /// Reads a w x h region of `level` whose top-left is (x, y) in level-0 coordinates, exactly like
  /// openslide_read_region, composited over the background colour. Out-of-bounds is background.
  RgbImage readRegion(int64_t x, int64_t y, int level, int w, int h) const;

  /// A thumbnail of the whole slide, read from the coarsest level whose longer side is at least
  /// `maxSide`, resized to fit `maxSide`. Returns the image and its downsample w.r.t. level 0.
  RgbImage thumbnail(int maxSide, double* downsample) const;
  /// The whole of `level`, box-filtered down to fit `maxSide` when it is larger (never enlarged).
  /// Returns the image and its downsample w.r.t. level 0 (the level's downsample times the
  /// shrink factor).
  RgbImage levelThumbnail(int level, int maxSide, double* downsample) const;

 private:
  RgbImage shrinkLevel(int level, int width, int height) const;
  struct Impl;
  explicit Slide(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slidetrain::wsi
