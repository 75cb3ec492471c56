// libvips backend for files OpenSlide refuses: plain or striped TIFF, the first page of an
// OME-TIFF, PNG, JPEG. The image is normalised once to 8-bit sRGB over the background colour;
// every read crops that shared, immutable image, which libvips allows from many threads.
#include <vips/vips8>

#include <cstring>
#include <mutex>

#include "wsi/Errors.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi::detail {

void ensureVips() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("slidetrain")) throw SlideError("libvips failed to start: " +
                                                  std::string(vips_error_buffer()));
  });
}

namespace {

/// Any band layout / format / interpretation -> 3-band uchar sRGB composited over `bg`.
vips::VImage toRgb8(vips::VImage img, const std::array<uint8_t, 3>& bg) {
  using vips::VImage;
  const VipsInterpretation interp = img.interpretation();
  if (interp != VIPS_INTERPRETATION_sRGB && interp != VIPS_INTERPRETATION_MULTIBAND) {
    try {
      img = img.colourspace(VIPS_INTERPRETATION_sRGB);
    } catch (const vips::VError&) {
      vips_error_clear();  // unusual interpretation: fall through to the generic band handling
    }
  }
  if (img.has_alpha()) {
    img = img.flatten(VImage::option()->set(
        "background", std::vector<double>{double(bg[0]), double(bg[1]), double(bg[2])}));
  }
  if (img.bands() < 3) {
    VImage g = img.extract_band(0);
    img = g.bandjoin(std::vector<VImage>{g, g});
  } else if (img.bands() > 3) {
    img = img.extract_band(0, VImage::option()->set("n", 3));
  }
  if (img.format() != VIPS_FORMAT_UCHAR) img = img.cast(VIPS_FORMAT_UCHAR);
  return img;
}

class VipsReader final : public SlideReader {
 public:
  explicit VipsReader(vips::VImage rgb) : rgb_(std::move(rgb)) {}

  void readRegion(int64_t x, int64_t y, int level, int w, int h, RgbImage& out) const override {
    const int64_t W = dimensions[0][0], H = dimensions[0][1];
    // Out-of-bounds parts are background, as with OpenSlide.
    const int64_t x0 = std::max<int64_t>(x, 0), y0 = std::max<int64_t>(y, 0);
    const int64_t x1 = std::min<int64_t>(x + w, W), y1 = std::min<int64_t>(y + h, H);
    if (x1 - x0 < w || y1 - y0 < h) {
      for (size_t i = 0; i < out.pixels.size(); i += 3) std::memcpy(&out.pixels[i], bg(), 3);
    }
    if (x1 <= x0 || y1 <= y0) return;
    const int cw = int(x1 - x0), ch = int(y1 - y0);
    size_t size = 0;
    void* mem = nullptr;
    try {
      mem = rgb_.crop(int(x0), int(y0), cw, ch).write_to_memory(&size);
    } catch (const vips::VError& e) {
      vips_error_clear();
      throw SlideError(describeRegion(path, level, x, y, w, h) + ": libvips: " + e.what());
    }
    const auto* src = static_cast<const uint8_t*>(mem);
    for (int r = 0; r < ch; ++r) {
      std::memcpy(out.at(int(x0 - x), int(y0 - y) + r), src + size_t(r) * cw * 3, size_t(cw) * 3);
    }
    g_free(mem);
  }

 private:
  const uint8_t* bg() const { return background.data(); }
  vips::VImage rgb_;
};

std::map<std::string, std::string> vipsFields(const vips::VImage& img) {
  std::map<std::string, std::string> out;
  gchar** fields = vips_image_get_fields(img.get_image());
  for (gchar** f = fields; f && *f; ++f) {
    char* value = nullptr;
    if (vips_image_get_as_string(img.get_image(), *f, &value) == 0 && value) {
      out[std::string("vips.") + *f] = value;
    }
    g_free(value);
  }
  g_strfreev(fields);
  vips_error_clear();
  return out;
}

}  // namespace

std::unique_ptr<SlideReader> openWithVips(const std::string& path,
                                          const std::array<uint8_t, 3>& background,
                                          std::string* whyNot) {
  ensureVips();
  try {
    vips::VImage raw = vips::VImage::new_from_file(
        path.c_str(), vips::VImage::option()->set("access", VIPS_ACCESS_RANDOM));
    vips::VImage rgb = toRgb8(raw, background);
    // Header parsing succeeds for files whose pixels cannot be decoded (unknown compression):
    // decode one pixel now so that open() fails, not the first patch read in a worker thread.
    size_t size = 0;
    g_free(rgb.crop(0, 0, 1, 1).write_to_memory(&size));
    auto reader = std::make_unique<VipsReader>(rgb);
    reader->path = path;
    reader->backend = "vips";
    reader->vendor = "vips";
    reader->background = background;
    reader->dimensions.push_back({raw.width(), raw.height()});
    reader->downsamples.push_back(1.0);
    reader->properties = vipsFields(raw);
    // libvips reports 1 pixel/mm when the file records no resolution; only trust xres when a
    // unit was recorded or the value differs from that default.
    const bool recorded = reader->properties.count("vips.resolution-unit") || raw.xres() != 1.0;
    if (recorded && raw.xres() > 0) reader->recordedMpp = mppFromResolution(raw.xres() * 10, "cm");
    return reader;
  } catch (const vips::VError& e) {
    std::string msg = e.what();
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    for (auto& c : msg) c = c == '\n' ? ';' : c;
    *whyNot = "libvips: " + msg;
    vips_error_clear();
    return nullptr;
  }
}

}  // namespace slidetrain::wsi::detail
