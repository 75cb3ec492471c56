// OpenSlide backend. OpenSlide reports errors by putting the handle into a sticky error state, so
// openslide_get_error is checked after every call and turned into a SlideError right here.
#include <openslide.h>

#include <cmath>
#include <cstdlib>

#include "wsi/Errors.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi::detail {
namespace {

struct OpenSlideCloser {
  void operator()(openslide_t* osr) const {
    if (osr) openslide_close(osr);
  }
};
using OpenSlideHandle = std::unique_ptr<openslide_t, OpenSlideCloser>;

class OpenSlideReader final : public SlideReader {
 public:
  explicit OpenSlideReader(OpenSlideHandle osr) : osr_(std::move(osr)) {}

  /// Throws SlideError "<context>: <openslide error>" if the handle is in the error state.
  void check(const std::string& context) const {
    if (const char* err = openslide_get_error(osr_.get())) {
      throw SlideError(context + ": " + err);
    }
  }

  void load() {
    const std::string ctx = "slide '" + path + "'";
    const int32_t levels = openslide_get_level_count(osr_.get());
    check(ctx + ": reading the level count");
    if (levels < 1) throw SlideError(ctx + ": OpenSlide reports no levels");
    for (int32_t l = 0; l < levels; ++l) {
      int64_t w = -1, h = -1;
      openslide_get_level_dimensions(osr_.get(), l, &w, &h);
      const double ds = openslide_get_level_downsample(osr_.get(), l);
      check(ctx + ": reading the dimensions of level " + std::to_string(l));
      dimensions.push_back({w, h});
      downsamples.push_back(ds);
    }
    const char* const* names = openslide_get_property_names(osr_.get());
    check(ctx + ": reading property names");
    for (; names && *names; ++names) {
      const char* v = openslide_get_property_value(osr_.get(), *names);
      check(ctx + ": reading property " + *names);
      properties[*names] = v ? v : "";
    }
    const char* const* assoc = openslide_get_associated_image_names(osr_.get());
    check(ctx + ": reading associated image names");
    for (; assoc && *assoc; ++assoc) associated_.push_back(*assoc);
    auto prop = [&](const char* k) -> const std::string* {
      auto it = properties.find(k);
      return it == properties.end() ? nullptr : &it->second;
    };
    vendor = prop(OPENSLIDE_PROPERTY_NAME_VENDOR) ? *prop(OPENSLIDE_PROPERTY_NAME_VENDOR) : "";
    if (auto* m = prop(OPENSLIDE_PROPERTY_NAME_MPP_X)) {
      const double v = std::strtod(m->c_str(), nullptr);
      if (v > 0) recordedMpp = v;
    }
    // OpenSlide 3.4.1's generic-tiff sets no mpp-x, but it does copy the TIFF resolution tags.
    if (!recordedMpp && prop("tiff.XResolution") && prop("tiff.ResolutionUnit")) {
      recordedMpp = mppFromResolution(std::strtod(prop("tiff.XResolution")->c_str(), nullptr),
                                      *prop("tiff.ResolutionUnit"));
    }
  }

  std::vector<std::string> associatedImageNames() const override { return associated_; }

  RgbImage associatedImage(const std::string& name) const override {
    const std::string ctx = "slide '" + path + "': associated image '" + name + "'";
    int64_t w = -1, h = -1;
    openslide_get_associated_image_dimensions(osr_.get(), name.c_str(), &w, &h);
    check(ctx);
    if (w <= 0 || h <= 0) throw SlideError(ctx + ": no such associated image");
    std::vector<uint32_t> argb(static_cast<size_t>(w) * h);
    openslide_read_associated_image(osr_.get(), name.c_str(), argb.data());
    check(ctx);
    RgbImage img;
    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    img.pixels.resize(argb.size() * 3);
    argbToRgb(argb.data(), argb.size(), background, img.pixels.data());
    return img;
  }

  void readRegion(int64_t x, int64_t y, int level, int w, int h, RgbImage& out) const override {
    std::vector<uint32_t> argb(static_cast<size_t>(w) * h);
    openslide_read_region(osr_.get(), argb.data(), x, y, level, w, h);
    check(describeRegion(path, level, x, y, w, h));
    argbToRgb(argb.data(), argb.size(), background, out.pixels.data());
  }

 private:
  OpenSlideHandle osr_;
  std::vector<std::string> associated_;
};

}  // namespace

std::unique_ptr<SlideReader> openWithOpenSlide(const std::string& path,
                                               const std::array<uint8_t, 3>& background,
                                               std::string* whyNot) {
  OpenSlideHandle osr(openslide_open(path.c_str()));
  if (!osr) {
    *whyNot = "OpenSlide does not recognise the format";
    return nullptr;
  }
  if (const char* err = openslide_get_error(osr.get())) {
    // Recognised but broken or unsupported (e.g. an unknown TIFF compression): report the reason
    // and let the caller try libvips.
    *whyNot = std::string("OpenSlide: ") + err;
    return nullptr;
  }
  auto reader = std::make_unique<OpenSlideReader>(std::move(osr));
  reader->path = path;
  reader->backend = "openslide";
  reader->background = background;
  reader->load();
  return reader;
}

}  // namespace slidetrain::wsi::detail
