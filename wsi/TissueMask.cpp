// TissueMask: HSV saturation of a thumbnail -> median blur -> threshold (Otsu by default) ->
// closing -> small components removed -> holes filled. Stained tissue is saturated while glass,
// background and most scanner shading are grey, which is why saturation separates them.
#include "wsi/TissueMask.h"

#include "wsi/ImageIo.h"

#ifdef SLIDETRAIN_WITH_VIPS
#include <vips/vips8>
#endif

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "wsi/Errors.h"
#include "wsi/Morphology.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {

void TissueMaskOptions::validate() const {
  auto fail = [](const std::string& key, const std::string& what) {
    throw std::invalid_argument("tissue." + key + ": " + what);
  };
  if (level < -1) fail("level", "expected -1 (auto: nearest 32x) or a level >= 0");
  if (thumbnailMaxSide < 16 || thumbnailMaxSide > 16384)
    fail("thumbnail_max_side", "expected 16..16384, got " + std::to_string(thumbnailMaxSide));
  if (threshold > 255) fail("threshold", "expected < 0 (Otsu) or 0..255");
  if (background != "auto" && background != "bright" && background != "dark")
    fail("background", "expected auto, bright or dark");
  if (medianRadius < 0 || medianRadius > 32) fail("median_radius", "expected 0..32");
  if (closeRadius < 0 || closeRadius > 64) fail("close_radius", "expected 0..64");
  if (minComponentArea < 0) fail("min_component_area", "expected >= 0");
}

int otsuThreshold(const std::vector<uint64_t>& histogram) {
  double total = 0, sumAll = 0;
  for (size_t i = 0; i < histogram.size(); ++i) {
    total += double(histogram[i]);
    sumAll += double(i) * double(histogram[i]);
  }
  if (total == 0) return 0;
  // Between-class variance is flat across empty bins; take the middle of that plateau rather
  // than its first bin, so a clean background is not split at its own edge.
  double w0 = 0, sum0 = 0, best = -1;
  int first = 0, last = 0;
  for (size_t t = 0; t + 1 < histogram.size(); ++t) {
    w0 += double(histogram[t]);
    sum0 += double(t) * double(histogram[t]);
    const double w1 = total - w0;
    if (w0 == 0 || w1 == 0) continue;
    const double mu0 = sum0 / w0, mu1 = (sumAll - sum0) / w1;
    const double between = w0 * w1 * (mu0 - mu1) * (mu0 - mu1);
    if (between > best * (1 + 1e-12)) {
      best = between, first = last = int(t);
    } else if (between >= best * (1 - 1e-12) && last + 1 == int(t)) {
      last = int(t);
    }
  }
  const int bestT = (first + last) / 2;
  return bestT;  // tissue is saturation > bestT
}

int TissueMask::autoLevel(const Slide& slide) {
  int best = 0;
  double bestDistance = INFINITY;
  for (int l = 0; l < slide.levelCount(); ++l) {
    const double d = std::abs(std::log2(slide.levelDownsample(l) / 32.0));
    if (d < bestDistance - 1e-9) bestDistance = d, best = l;
  }
  return best;
}

TissueMask TissueMask::compute(const Slide& slide, const TissueMaskOptions& options) {
  options.validate();
  if (!options.maskFile.empty()) return fromUserMask(slide, options.maskFile, options);
  const int level = options.level >= 0 ? options.level : autoLevel(slide);
  double downsample = 1;
  RgbImage thumb = slide.levelThumbnail(level, options.thumbnailMaxSide, &downsample);
  return fromImage(thumb, downsample, options);
}

TissueMask TissueMask::fromUserMask(const Slide& slide, const std::string& pngPath,
                                    const TissueMaskOptions& options) {
  options.validate();
  detail::ensureVips();
  int pw = 0, ph = 0, bands = 0;
  std::vector<uint8_t> bytes;
#ifndef SLIDETRAIN_WITH_VIPS
  throw DataError("cannot read tissue mask '" + pngPath + "': reading mask images needs libvips, "
                  "which this build does not have (SLIDETRAIN_WITH_VIPS=OFF)");
#else
  try {
    vips::VImage img = vips::VImage::new_from_file(pngPath.c_str());
    pw = img.width(), ph = img.height();
    if (img.has_alpha()) img = img.extract_band(0, vips::VImage::option()->set("n", img.bands() - 1));
    img = (img != 0);  // uchar 0/255 per band, whatever the bit depth
    bands = img.bands();
    size_t n = 0;
    void* mem = img.write_to_memory(&n);
    bytes.assign(static_cast<uint8_t*>(mem), static_cast<uint8_t*>(mem) + n);
    g_free(mem);
  } catch (const vips::VError& e) {
    vips_error_clear();
    throw DataError("cannot read tissue mask '" + pngPath + "': " + e.what());
  }
#endif
  if (pw <= 0 || ph <= 0 || bytes.size() != size_t(pw) * ph * bands)
    throw DataError("cannot read tissue mask '" + pngPath + "': empty or unexpected image");
  double downsample = 1;
  RgbImage thumb =
      slide.thumbnail(std::min(std::max(pw, ph), options.thumbnailMaxSide), &downsample);
  TissueMask m;
  m.width_ = thumb.width, m.height_ = thumb.height;
  m.downsample_ = downsample;
  m.threshold_ = 0;
  m.fromUser_ = true;
  m.mask_.assign(size_t(m.width_) * m.height_, 0);
  // Nearest neighbour, each axis scaled on its own: the PNG covers the whole slide.
  for (int y = 0; y < m.height_; ++y) {
    const int sy = std::min(ph - 1, int((y + 0.5) * ph / m.height_));
    for (int x = 0; x < m.width_; ++x) {
      const int sx = std::min(pw - 1, int((x + 0.5) * pw / m.width_));
      const uint8_t* p = &bytes[(size_t(sy) * pw + sx) * bands];
      uint8_t v = 0;
      for (int b = 0; b < bands; ++b) v |= p[b];
      m.mask_[size_t(y) * m.width_ + x] = v ? 1 : 0;
    }
  }
  m.thumb_ = std::move(thumb);
  return m;
}

TissueMask TissueMask::fromImage(const RgbImage& thumb, double downsample,
                                 const TissueMaskOptions& options) {
  options.validate();
  if (thumb.width <= 0 || thumb.height <= 0 || !(downsample > 0))
    throw std::invalid_argument("TissueMask::fromImage: empty image or non-positive downsample");
  const size_t n = size_t(thumb.width) * thumb.height;
  // Brightness first: it decides the background (and is the signal on a dark one).
  Plane value{thumb.width, thumb.height, std::vector<uint8_t>(n)};
  std::vector<uint64_t> valueHist(256, 0);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &thumb.pixels[i * 3];
    value.data[i] = std::max({p[0], p[1], p[2]});
    ++valueHist[value.data[i]];
  }
  bool dark = options.background == "dark";
  if (options.background == "auto") {
    uint64_t below = 0;
    int median = 0;
    while (median < 255 && (below += valueHist[median]) * 2 < n) ++median;
    dark = median < kDarkMedian;
  }
  Plane sat{thumb.width, thumb.height, std::vector<uint8_t>(n)};
  if (dark) {
    sat = std::move(value);  // fluorescence: tissue is what shines
  } else {
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &thumb.pixels[i * 3];
      const int mx = std::max({p[0], p[1], p[2]}), mn = std::min({p[0], p[1], p[2]});
      sat.data[i] = mx == 0 ? 0 : uint8_t((255 * (mx - mn) + mx / 2) / mx);
    }
  }
  sat = medianBlur(sat, options.medianRadius);
  TissueMask m;
  m.darkField_ = dark;
  if (options.threshold >= 0) {
    m.threshold_ = options.threshold;
  } else {
    std::vector<uint64_t> hist(256, 0);
    for (uint8_t v : sat.data) ++hist[v];
    m.threshold_ = otsuThreshold(hist);
  }
  Plane mask{sat.width, sat.height, std::vector<uint8_t>(sat.data.size())};
  for (size_t i = 0; i < sat.data.size(); ++i) mask.data[i] = sat.data[i] > m.threshold_;
  mask = close(mask, options.closeRadius);
  removeSmallComponents(mask, options.minComponentArea);
  if (options.fillHoles) fillHoles(mask);
  m.width_ = mask.width;
  m.height_ = mask.height;
  m.downsample_ = downsample;
  m.mask_ = std::move(mask.data);
  m.thumb_ = thumb;
  return m;
}

double TissueMask::fraction(int64_t x0, int64_t y0, int64_t w, int64_t h) const {
  return areaFraction(x0, y0, w, h, [this](int x, int y) { return at(x, y); });
}

double TissueMask::whiteFraction(int64_t x0, int64_t y0, int64_t w, int64_t h,
                                 int threshold) const {
  if (thumb_.width != width_ || thumb_.height != height_) return 0;  // no thumbnail kept
  return areaFraction(x0, y0, w, h, [&](int x, int y) {
    const uint8_t* p = thumb_.at(x, y);
    return p[0] > threshold && p[1] > threshold && p[2] > threshold;
  });
}

double TissueMask::blackFraction(int64_t x0, int64_t y0, int64_t w, int64_t h,
                                 int threshold) const {
  if (thumb_.width != width_ || thumb_.height != height_) return 0;
  return areaFraction(x0, y0, w, h, [&](int x, int y) {
    const uint8_t* p = thumb_.at(x, y);
    return p[0] < threshold && p[1] < threshold && p[2] < threshold;
  });
}

template <typename Pred>
double TissueMask::areaFraction(int64_t x0, int64_t y0, int64_t w, int64_t h,
                                Pred inside) const {
  if (w <= 0 || h <= 0 || width_ == 0) return 0;
  // Exact area-weighted overlap of the level-0 rectangle with the mask cells; area outside the
  // mask counts as background.
  const double fx0 = double(x0) / downsample_, fx1 = double(x0 + w) / downsample_;
  const double fy0 = double(y0) / downsample_, fy1 = double(y0 + h) / downsample_;
  const int ix0 = std::max(0, int(std::floor(fx0))), ix1 = std::min(width_, int(std::ceil(fx1)));
  const int iy0 = std::max(0, int(std::floor(fy0))), iy1 = std::min(height_, int(std::ceil(fy1)));
  double covered = 0;
  for (int y = iy0; y < iy1; ++y) {
    const double wy = std::min(fy1, y + 1.0) - std::max(fy0, double(y));
    double row = 0;
    for (int x = ix0; x < ix1; ++x) {
      if (!inside(x, y)) continue;
      row += std::min(fx1, x + 1.0) - std::max(fx0, double(x));
    }
    covered += row * wy;
  }
  return covered / ((fx1 - fx0) * (fy1 - fy0));
}

double TissueMask::tissueFraction() const {
  if (mask_.empty()) return 0;
  size_t n = 0;
  for (uint8_t v : mask_) n += v;
  return double(n) / double(mask_.size());
}

void TissueMask::writeQc(const RgbImage& thumb, const std::string& pngPath) const {
  writePng(qcImage(thumb), pngPath, "tissue QC picture");
}

RgbImage TissueMask::qcImage(const RgbImage& thumb) const {
  if (thumb.width <= 0 || thumb.height <= 0 || width_ == 0)
    throw std::invalid_argument("TissueMask::qcImage: empty thumbnail or mask");
  RgbImage out = thumb;
  // Map each picture pixel to its mask cell (nearest), so any thumbnail size can be used.
  auto maskAt = [&](int x, int y) {
    if (x < 0 || y < 0 || x >= thumb.width || y >= thumb.height) return false;
    return at(std::min(width_ - 1, int(int64_t(x) * width_ / thumb.width)),
              std::min(height_ - 1, int(int64_t(y) * height_ / thumb.height)));
  };
  for (int y = 0; y < thumb.height; ++y)
    for (int x = 0; x < thumb.width; ++x) {
      if (!maskAt(x, y)) continue;
      uint8_t* p = out.at(x, y);
      const bool edge = !maskAt(x - 1, y) || !maskAt(x + 1, y) || !maskAt(x, y - 1) ||
                        !maskAt(x, y + 1);
      if (edge) {
        p[0] = 0, p[1] = 200, p[2] = 0;  // outline in green
      } else {
        p[0] = uint8_t(p[0] * 3 / 4), p[1] = uint8_t(p[1] * 3 / 4 + 64), p[2] = uint8_t(p[2] * 3 / 4);
      }
    }
  return out;
}

}  // namespace slidetrain::wsi
