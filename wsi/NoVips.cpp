// What libvips provides, for builds without it (SLIDETRAIN_WITH_VIPS=OFF: a machine where only
// OpenSlide, libtiff and libjpeg are at hand, such as launch/gpu_check.sh's). Slides open with
// OpenSlide (and tiled JPEG TIFF levels with TiffTileReader) only; PNGs are written uncompressed
// (stored deflate blocks: valid PNG, larger files); `synth`, user tissue-mask PNGs and predict's
// heatmap TIFFs need libvips and say so. Compiled only when SLIDETRAIN_WITH_VIPS is off.
#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "wsi/DeepZoom.h"
#include "wsi/Errors.h"
#include "wsi/ImageIo.h"
#include "wsi/SlideReader.h"
#include "wsi/SynthCohort.h"

namespace slidetrain::wsi {

namespace detail {

void ensureVips() {
  throw SlideError("this slidetrain was built without libvips (SLIDETRAIN_WITH_VIPS=OFF); "
                   "rebuild with libvips for this feature");
}

std::unique_ptr<SlideReader> openWithVips(const std::string& /*path*/,
                                          const std::array<uint8_t, 3>& /*background*/,
                                          std::string* whyNot) {
  if (whyNot) *whyNot = "libvips (the fallback reader) is not built into this slidetrain";
  return nullptr;
}

}  // namespace detail

std::vector<SynthSlide> synthesizeCohort(const std::string& outDir, const SynthOptions& /*options*/) {
  throw DataError("cannot synthesise a cohort in '" + outDir +
                  "': slidetrain synth writes slides with libvips, which this build does not have "
                  "(SLIDETRAIN_WITH_VIPS=OFF); synthesise it with a full build and copy it here");
}

namespace {

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void putBe32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
}

void chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  putBe32(out, static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  putBe32(out, crc32(body.data(), body.size()));
}

}  // namespace

RgbImage readImageFile(const std::string& path) {
  throw SlideError("cannot read image '" + path +
                   "': this build has no libvips (patch folders need it; rebuild with SLIDETRAIN_WITH_VIPS)");
}

void writePng(const RgbImage& img, const std::string& path, const std::string& what) {
  if (img.width <= 0 || img.height <= 0 ||
      img.pixels.size() != static_cast<size_t>(img.width) * img.height * 3)
    throw DataError("cannot write " + what + " '" + path + "': not a " + std::to_string(img.width) +
                    "x" + std::to_string(img.height) + " RGB image");
  // Filter type 0 per row, then zlib with stored (uncompressed) deflate blocks.
  std::vector<uint8_t> raw;
  const size_t row = static_cast<size_t>(img.width) * 3;
  raw.reserve((row + 1) * img.height);
  for (int y = 0; y < img.height; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), img.pixels.begin() + y * row, img.pixels.begin() + (y + 1) * row);
  }
  std::vector<uint8_t> z{0x78, 0x01};
  uint32_t a = 1, b = 0;  // Adler-32
  for (uint8_t c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  for (size_t off = 0; off < raw.size() || off == 0; off += 65535) {
    const size_t n = std::min<size_t>(65535, raw.size() - off);
    z.push_back(off + n >= raw.size() ? 1 : 0);  // BFINAL on the last block, BTYPE 00
    z.push_back(static_cast<uint8_t>(n));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n));
    z.push_back(static_cast<uint8_t>(~n >> 8));
    z.insert(z.end(), raw.begin() + off, raw.begin() + off + n);
    if (n == 0) break;
  }
  putBe32(z, (b << 16) | a);
  std::vector<uint8_t> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  std::vector<uint8_t> ihdr;
  putBe32(ihdr, static_cast<uint32_t>(img.width));
  putBe32(ihdr, static_cast<uint32_t>(img.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, deflate, adaptive filter, no interlace
  chunk(out, "IHDR", ihdr);
  chunk(out, "IDAT", z);
  chunk(out, "IEND", {});
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
  if (!f) throw DataError("cannot write " + what + " '" + path + "'");
}

void writePyramidTiff(const uint8_t* /*rgba*/, int /*width*/, int /*height*/,
                      const std::string& /*path*/, const PyramidTiffOptions& /*options*/) {
  detail::ensureVips();  // throws: tiled pyramids are written with libvips' tiffsave
}

int deepZoomLevels(int width, int height) {
  int levels = 1;
  for (int side = std::max(width, height); side > 1; side = (side + 1) / 2) ++levels;
  return levels;
}

DeepZoomLayout writeSlideDeepZoom(const std::string& /*slidePath*/, const SlideOptions& /*options*/,
                                  int /*maxSide*/, const std::string& /*base*/) {
  detail::ensureVips();  // throws: deep-zoom tiles are written with libvips' dzsave
  return {};
}

DeepZoomLayout writeOverlayDeepZoom(const uint8_t* /*rgba*/, int /*width*/, int /*height*/,
                                    const std::string& /*base*/) {
  detail::ensureVips();
  return {};
}

}  // namespace slidetrain::wsi
