#include "wsi/TiffLayout.h"

#include <cstdarg>
#include <cstdio>

#include <tiffio.h>

namespace slidetrain::wsi {
namespace detail {

void TiffCloser::operator()(TIFF* t) const {
  if (t) TIFFClose(t);
}

namespace {
int tiffMessage(TIFF*, void* user, const char* module, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  auto* s = static_cast<std::string*>(user);
  if (s->empty()) *s = std::string(module ? module : "libtiff") + ": " + buf;
  return 1;  // handled: keep libtiff quiet
}
}  // namespace

std::unique_ptr<TIFF, TiffCloser> openTiffQuietly(const std::string& path, std::string* error) {
  std::string warning;
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, tiffMessage, error);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, tiffMessage, &warning);
  std::unique_ptr<TIFF, TiffCloser> tif(TIFFOpenExt(path.c_str(), "rm", opts));
  TIFFOpenOptionsFree(opts);
  return tif;
}

}  // namespace detail

std::string TiffLayout::describe() const {
  std::string s = std::to_string(samplesPerPixel) + (samplesPerPixel == 1 ? " sample" : " samples") +
                  " of " + std::to_string(bitsPerSample) + " bits";
  if (photometric == 0 || photometric == 1) s += " (greyscale)";
  return s;
}

std::optional<TiffLayout> readTiffLayout(const std::string& path) {
  std::string error;
  auto tif = detail::openTiffQuietly(path, &error);
  if (!tif) return std::nullopt;
  TiffLayout l;
  uint16_t bits = 8, samples = 3, photo = 2;
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_BITSPERSAMPLE, &bits);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(tif.get(), TIFFTAG_PHOTOMETRIC, &photo);
  l.bitsPerSample = bits, l.samplesPerPixel = samples, l.photometric = photo;
  uint32_t w0 = 0, h0 = 0;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w0);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h0);
  l.fullSizePages = 1;
  while (TIFFReadDirectory(tif.get())) {
    uint32_t w = 0, h = 0;
    TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
    if (w == w0 && h == h0) ++l.fullSizePages;
  }
  return l;
}

}  // namespace slidetrain::wsi
