// Slide: picks a backend (OpenSlide first, libvips when OpenSlide refuses), validates arguments
// once for both backends, and implements what is backend-independent (mpp rules, best level,
// thumbnails).
#include "wsi/Slide.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <sys/stat.h>

#include "wsi/Errors.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {
namespace detail {

RgbImage SlideReader::associatedImage(const std::string& name) const {
  throw SlideError("slide '" + path + "': no associated image '" + name + "' (" + backend +
                   " backend)");
}

void argbToRgb(const uint32_t* argb, size_t count, const std::array<uint8_t, 3>& bg,
               uint8_t* rgb) {
  for (size_t i = 0; i < count; ++i, rgb += 3) {
    const uint32_t p = argb[i];
    const uint32_t a = p >> 24;
    const uint32_t c[3] = {(p >> 16) & 0xff, (p >> 8) & 0xff, p & 0xff};
    if (a == 255) {
      rgb[0] = uint8_t(c[0]), rgb[1] = uint8_t(c[1]), rgb[2] = uint8_t(c[2]);
    } else if (a == 0) {
      rgb[0] = bg[0], rgb[1] = bg[1], rgb[2] = bg[2];
    } else {
      for (int k = 0; k < 3; ++k) {
        // Un-premultiply exactly as openslide-python's argb2rgba, then composite "over".
        const uint32_t straight = std::min<uint32_t>(255, (c[k] * 255 + a / 2) / a);
        rgb[k] = uint8_t((straight * a + bg[k] * (255 - a) + 127) / 255);
      }
    }
  }
}

std::optional<double> mppFromResolution(double pixelsPerUnit, const std::string& unit) {
  if (!(pixelsPerUnit > 0)) return std::nullopt;
  double micronsPerUnit = 0;
  if (unit == "centimeter" || unit == "cm") micronsPerUnit = 1e4;
  else if (unit == "inch" || unit == "in") micronsPerUnit = 25400;
  else return std::nullopt;
  const double mpp = micronsPerUnit / pixelsPerUnit;
  // Writers put placeholders here (72 dpi = 353 um/px, libvips' 1 px/mm = 1000 um/px). Nothing
  // tiled at that scale is a slide, so such values count as "not recorded".
  if (mpp > 100) return std::nullopt;
  return mpp;
}

std::string describeRegion(const std::string& path, int level, int64_t x, int64_t y, int64_t w,
                           int64_t h) {
  std::ostringstream s;
  s << "slide '" << path << "' level " << level << " region (x=" << x << ", y=" << y
    << ", w=" << w << ", h=" << h << ")";
  return s.str();
}

}  // namespace detail

struct Slide::Impl {
  std::unique_ptr<detail::SlideReader> reader;
  SlideOptions options;
};

Slide::Slide(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Slide::~Slide() = default;

std::unique_ptr<Slide> Slide::open(const std::string& path, const SlideOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw SlideError("cannot open slide '" + path + "': file does not exist or is not readable");
  }
  if (!S_ISREG(st.st_mode)) {
    throw SlideError("cannot open slide '" + path + "': not a regular file");
  }
  if (options.mppOverride && !(*options.mppOverride > 0)) {
    throw SlideError("cannot open slide '" + path + "': mpp override must be positive");
  }
  std::string whyNotOpenSlide, whyNotVips;
  auto reader = detail::openWithOpenSlide(path, options.background, &whyNotOpenSlide);
  if (!reader) reader = detail::openWithVips(path, options.background, &whyNotVips);
  if (!reader) {
    throw SlideError("cannot open slide '" + path + "': " + whyNotOpenSlide + "; " + whyNotVips);
  }
  auto impl = std::make_unique<Impl>();
  impl->reader = std::move(reader);
  impl->options = options;
  return std::unique_ptr<Slide>(new Slide(std::move(impl)));
}

const std::string& Slide::path() const { return impl_->reader->path; }
const std::string& Slide::backend() const { return impl_->reader->backend; }
std::string Slide::vendor() const { return impl_->reader->vendor; }
int Slide::levelCount() const { return static_cast<int>(impl_->reader->dimensions.size()); }

static void checkLevel(const Slide& s, int level) {
  if (level < 0 || level >= s.levelCount()) {
    throw SlideError("slide '" + s.path() + "': level " + std::to_string(level) +
                     " does not exist (levels 0.." + std::to_string(s.levelCount() - 1) + ")");
  }
}

std::array<int64_t, 2> Slide::levelDimensions(int level) const {
  checkLevel(*this, level);
  return impl_->reader->dimensions[level];
}

double Slide::levelDownsample(int level) const {
  checkLevel(*this, level);
  return impl_->reader->downsamples[level];
}

int Slide::bestLevelForDownsample(double downsample) const {
  const auto& ds = impl_->reader->downsamples;
  for (size_t i = 1; i < ds.size(); ++i) {
    if (downsample < ds[i]) return static_cast<int>(i - 1);
  }
  return static_cast<int>(ds.size() - 1);
}

std::optional<double> Slide::mpp() const {
  if (impl_->options.mppOverride) return impl_->options.mppOverride;
  return impl_->reader->recordedMpp;
}

double Slide::requireMpp() const {
  if (auto m = mpp()) return *m;
  throw SlideError("slide '" + path() +
                   "' records no microns-per-pixel; HINT: set `tiling.mpp_override` in the "
                   "config, or add an `mpp` column to cohort.csv for this slide");
}

std::optional<double> Slide::objectivePower() const {
  const auto& p = impl_->reader->properties;
  for (const char* key : {"openslide.objective-power", "aperio.AppMag"}) {
    auto it = p.find(key);
    if (it != p.end()) {
      char* end = nullptr;
      const double v = std::strtod(it->second.c_str(), &end);
      if (end != it->second.c_str() && v > 0) return v;
    }
  }
  return std::nullopt;
}

const std::map<std::string, std::string>& Slide::properties() const {
  return impl_->reader->properties;
}

std::vector<std::string> Slide::associatedImageNames() const {
  return impl_->reader->associatedImageNames();
}

RgbImage Slide::associatedImage(const std::string& name) const {
  return impl_->reader->associatedImage(name);
}

RgbImage Slide::readRegion(int64_t x, int64_t y, int level, int w, int h) const {
  checkLevel(*this, level);
  if (w <= 0 || h <= 0) {
    throw SlideError(detail::describeRegion(path(), level, x, y, w, h) +
                     ": width and height must be positive");
  }
  RgbImage out;
  out.width = w;
  out.height = h;
  out.pixels.resize(static_cast<size_t>(w) * h * 3);
  impl_->reader->readRegion(x, y, level, w, h, out);
  return out;
}

RgbImage Slide::thumbnail(int maxSide, double* downsample) const {
  if (maxSide <= 0) throw SlideError("slide '" + path() + "': thumbnail size must be positive");
  const auto [W0, H0] = levelDimensions(0);
  const double scale = std::min(1.0, double(maxSide) / double(std::max(W0, H0)));
  const int tw = std::max(1, int(std::lround(W0 * scale)));
  const int th = std::max(1, int(std::lround(H0 * scale)));
  // Coarsest level still at least as large as the thumbnail, so we only ever shrink.
  int level = 0;
  for (int l = levelCount() - 1; l >= 0; --l) {
    const auto d = levelDimensions(l);
    if (d[0] >= tw && d[1] >= th) {
      level = l;
      break;
    }
  }
  if (downsample) *downsample = double(W0) / tw;
  return shrinkLevel(level, tw, th);
}

RgbImage Slide::levelThumbnail(int level, int maxSide, double* downsample) const {
  if (maxSide <= 0) throw SlideError("slide '" + path() + "': thumbnail size must be positive");
  const auto [LW, LH] = levelDimensions(level);  // throws for a missing level
  const double scale = std::min(1.0, double(maxSide) / double(std::max(LW, LH)));
  const int tw = std::max(1, int(std::lround(LW * scale)));
  const int th = std::max(1, int(std::lround(LH * scale)));
  // The level's own downsample (not level-0 width / level width: levels are rounded down and
  // may miss a few level-0 columns), times the shrink factor.
  if (downsample) *downsample = levelDownsample(level) * double(LW) / tw;
  return shrinkLevel(level, tw, th);
}

RgbImage Slide::shrinkLevel(int level, int tw, int th) const {
  const auto [LW, LH] = levelDimensions(level);
  const double lds = levelDownsample(level);
  // Box-filter the level into the thumbnail, reading bands of rows to bound memory.
  std::vector<uint64_t> sum(size_t(tw) * th * 3, 0), count(size_t(tw) * th, 0);
  std::vector<int> colTarget(LW);
  for (int64_t sx = 0; sx < LW; ++sx) colTarget[sx] = int(std::min<int64_t>(tw - 1, sx * tw / LW));
  const int bandRows = int(std::max<int64_t>(1, std::min<int64_t>(LH, (4 << 20) / LW)));
  for (int64_t r0 = 0; r0 < LH; r0 += bandRows) {
    const int rows = int(std::min<int64_t>(bandRows, LH - r0));
    const RgbImage band =
        readRegion(0, std::llround(r0 * lds), level, int(LW), rows);
    for (int r = 0; r < rows; ++r) {
      const int ty = int(std::min<int64_t>(th - 1, (r0 + r) * th / LH));
      const uint8_t* src = band.at(0, r);
      uint64_t* srow = &sum[size_t(ty) * tw * 3];
      uint64_t* crow = &count[size_t(ty) * tw];
      for (int64_t sx = 0; sx < LW; ++sx, src += 3) {
        const int tx = colTarget[sx];
        srow[tx * 3] += src[0], srow[tx * 3 + 1] += src[1], srow[tx * 3 + 2] += src[2];
        ++crow[tx];
      }
    }
  }
  RgbImage thumb;
  thumb.width = tw;
  thumb.height = th;
  thumb.pixels.resize(sum.size());
  for (size_t i = 0; i < count.size(); ++i) {
    const uint64_t n = std::max<uint64_t>(1, count[i]);
    for (int k = 0; k < 3; ++k) thumb.pixels[i * 3 + k] = uint8_t((sum[i * 3 + k] + n / 2) / n);
  }
  return thumb;
}

}  // namespace slidetrain::wsi
