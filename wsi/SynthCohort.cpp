// Synthetic H&E-like cohort. Each slide is one lazy libvips expression (perlin tissue field,
// worley nuclei, gaussian grain, analytic tumour ellipses) evaluated tile by tile while tiffsave
// streams a tiled JPEG pyramid, so a gigapixel slide never sits in memory. All randomness comes
// from splitmix64 streams seeded by (options.seed, slide index), so the bytes are reproducible.
#include "wsi/SynthCohort.h"

#ifdef SLIDETRAIN_WITH_VIPS
#include <vips/vips8>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "wsi/Annotations.h"
#include "wsi/Errors.h"
#include "wsi/Random.h"
#include "wsi/SlideReader.h"

namespace slidetrain::wsi {

void SynthOptions::validate() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument("synth: " + what); };
  if (numSlides < 1) fail("numSlides must be >= 1");
  if (width < 64 || height < 64) fail("width and height must be >= 64");
  if (!(mpp > 0)) fail("mpp must be positive");
  if (!(tumorFraction >= 0 && tumorFraction <= 1)) fail("tumorFraction must be in 0..1");
  if (!(testFraction >= 0 && testFraction < 1)) fail("testFraction must be in 0..1 (exclusive)");
  if (!(valFraction >= 0 && testFraction + valFraction < 1))
    fail("valFraction must be >= 0 and testFraction + valFraction below 1 (slides left to train on)");
  if (!(tumorTissueShare >= 0 && tumorTissueShare <= 1)) fail("tumorTissueShare must be in 0..1");
  if (!(slideVariation >= 0 && slideVariation <= 1)) fail("slideVariation must be in 0..1");
  if (tileSize < 16 || tileSize % 16) fail("tileSize must be a positive multiple of 16");
  if (jpegQuality < 1 || jpegQuality > 100) fail("jpegQuality must be in 1..100");
}

#ifdef SLIDETRAIN_WITH_VIPS
namespace {

using vips::VImage;

struct Ellipse {
  double cx, cy, a, b, angle;  // level-0 pixels
  bool contains(double x, double y) const {
    const double c = std::cos(angle), s = std::sin(angle);
    const double u = ((x - cx) * c + (y - cy) * s) / a, v = (-(x - cx) * s + (y - cy) * c) / b;
    return u * u + v * v < 1;
  }
};

VImage constant(const VImage& like, std::vector<double> rgb) {
  return (VImage::black(like.width(), like.height(), VImage::option()->set("bands", 3)) + rgb);
}

/// Picks 1-3 ellipses centred in tissue, sized so that together they cover ~20-40 % of it.
std::vector<Ellipse> tumourEllipses(const std::vector<uint8_t>& tissueLow, int lw, int lh,
                                    double scale, Rng& rng) {
  std::vector<int> tissuePx;
  for (int i = 0; i < lw * lh; ++i)
    if (tissueLow[i]) tissuePx.push_back(i);
  std::vector<Ellipse> out;
  if (tissuePx.empty()) return out;
  const int n = 1 + int(rng.next() % 3);
  const double target = rng.uniform(0.22, 0.35) * double(tissuePx.size()) * scale * scale / n;
  for (int k = 0; k < n; ++k) {
    Ellipse best{};
    double bestInside = -1;
    for (int tries = 0; tries < 24; ++tries) {  // prefer ellipses lying mostly over tissue
      const int p = tissuePx[rng.next() % tissuePx.size()];
      const double ratio = rng.uniform(0.55, 1.0);
      Ellipse e{(p % lw + 0.5) * scale, (p / lw + 0.5) * scale, 0, 0, rng.uniform(0, M_PI)};
      e.a = std::sqrt(target / (M_PI * ratio)), e.b = e.a * ratio;
      int inside = 0, total = 0;
      for (int y = 0; y < lh; ++y)
        for (int x = 0; x < lw; ++x)
          if (e.contains((x + 0.5) * scale, (y + 0.5) * scale)) ++total, inside += tissueLow[y * lw + x];
      const double frac = total ? double(inside) / total : 0;
      if (frac > bestInside) bestInside = frac, best = e;
    }
    out.push_back(best);
  }
  return out;
}

/// Share of the ellipse's samples on the low-resolution grid that are tissue (its centre's
/// sample when the ellipse is smaller than a grid cell); scans only its bounding box.
double tissueInside(const Ellipse& e, const std::vector<uint8_t>& tissueLow, int lw, int lh,
                    double scale) {
  const double r = std::max(e.a, e.b);
  const int x0 = std::max(0, int((e.cx - r) / scale)), x1 = std::min(lw - 1, int((e.cx + r) / scale));
  const int y0 = std::max(0, int((e.cy - r) / scale)), y1 = std::min(lh - 1, int((e.cy + r) / scale));
  int inside = 0, total = 0;
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x)
      if (e.contains((x + 0.5) * scale, (y + 0.5) * scale)) ++total, inside += tissueLow[y * lw + x];
  if (total == 0) {
    const int x = std::clamp(int(e.cx / scale), 0, lw - 1), y = std::clamp(int(e.cy / scale), 0, lh - 1);
    return tissueLow[y * lw + x];
  }
  return double(inside) / total;
}

/// Weak-label mode: 3-5 small ellipses whose areas add up to `share` of the tissue area, each the
/// best of up to 64 seeded tries (apart from the others first, then most of it over tissue), so
/// that most patches of a tumour slide show no tumour at all.
std::vector<Ellipse> scatteredTumourEllipses(const std::vector<uint8_t>& tissueLow, int lw, int lh,
                                             double scale, double share, Rng& rng) {
  std::vector<int> tissuePx;
  for (int i = 0; i < lw * lh; ++i)
    if (tissueLow[i]) tissuePx.push_back(i);
  std::vector<Ellipse> out;
  if (tissuePx.empty()) return out;
  const int n = 3 + int(rng.next() % 3);
  const double area = share * double(tissuePx.size()) * scale * scale / n;
  for (int k = 0; k < n; ++k) {
    const double ratio = rng.uniform(0.6, 1.0);
    Ellipse best{};
    double bestScore = -2;
    for (int tries = 0; tries < 64 && bestScore < 1; ++tries) {
      const int p = tissuePx[rng.next() % tissuePx.size()];
      Ellipse e{(p % lw + 0.5) * scale, (p / lw + 0.5) * scale, 0, 0, rng.uniform(0, M_PI)};
      e.a = std::sqrt(area / (M_PI * ratio)), e.b = e.a * ratio;
      // Apart: a gap of at least a_i + a_j between the two ellipses, so the regions stay separate.
      bool apart = true;
      for (const auto& o : out) apart = apart && std::hypot(e.cx - o.cx, e.cy - o.cy) > 2 * (e.a + o.a);
      const double score = tissueInside(e, tissueLow, lw, lh, scale) - (apart ? 0 : 1);
      if (score > bestScore) bestScore = score, best = e;
    }
    out.push_back(best);
  }
  return out;
}

/// Share of the tissue samples of the low-resolution grid that lie inside some ellipse.
double tumourShareOfTissue(const std::vector<Ellipse>& ellipses, const std::vector<uint8_t>& tissueLow,
                           int lw, int lh, double scale) {
  if (ellipses.empty()) return 0;
  size_t tissue = 0, tumour = 0;
  for (int y = 0; y < lh; ++y)
    for (int x = 0; x < lw; ++x) {
      if (!tissueLow[y * lw + x]) continue;
      ++tissue;
      for (const auto& e : ellipses)
        if (e.contains((x + 0.5) * scale, (y + 0.5) * scale)) {
          ++tumour;
          break;
        }
    }
  return tissue ? double(tumour) / tissue : 0;
}

AnnotationPolygon ellipsePolygon(const Ellipse& e) {
  AnnotationPolygon poly;
  poly.className = "tumor";
  poly.rings.emplace_back();
  for (int i = 0; i < 64; ++i) {
    const double t = 2 * M_PI * i / 64, c = std::cos(e.angle), s = std::sin(e.angle);
    const double u = e.a * std::cos(t), v = e.b * std::sin(t);
    poly.rings[0].push_back({std::round((e.cx + u * c - v * s) * 100) / 100,
                             std::round((e.cy + u * s + v * c) * 100) / 100});
  }
  return poly;
}

void writeSlide(const std::string& file, const SynthOptions& o, uint64_t slideSeed, bool tumour,
                SynthSlide& out) {
  Rng rng{slideSeed};
  const int W = o.width, H = o.height;
  // Tissue: low-resolution perlin field (also used to place tumours), upsampled lazily.
  const double scale = std::max(4.0, std::ceil(std::max(W, H) / 512.0));
  const int lw = int(std::ceil(W / scale)), lh = int(std::ceil(H / scale));
  VImage field = VImage::perlin(lw, lh, VImage::option()->set("cell_size", std::max(8, std::max(lw, lh) / 3))
                                            ->set("seed", rng.seed()));
  field = field + 0.5 * VImage::perlin(lw, lh, VImage::option()->set("cell_size", std::max(4, std::max(lw, lh) / 10))
                                                   ->set("seed", rng.seed()));
  const double cut = 0.02;
  field = field.copy_memory();
  const auto* fp = static_cast<const float*>(field.data());
  std::vector<uint8_t> tissueLow(size_t(lw) * lh);
  for (size_t i = 0; i < tissueLow.size(); ++i) tissueLow[i] = fp[i] > cut;
  // Slide variation (drawn only when asked, so that variation 0 writes the same bytes as before).
  const double v = o.slideVariation;
  double share = o.tumorTissueShare, nucCell = 30, nucRadius = 2.6;
  std::array<double, 3> gain{1, 1, 1}, offset{0, 0, 0};
  std::vector<Ellipse> mimics;
  if (v > 0) {
    for (int c = 0; c < 3; ++c) gain[c] = 1 + v * rng.uniform(-0.18, 0.12);
    const double shade = v * rng.uniform(-18, 10);  // the slide's overall darkness
    for (int c = 0; c < 3; ++c) offset[c] = shade + v * rng.uniform(-10, 10);
    nucCell = 30 * (1 + v * rng.uniform(-0.3, 0.3));
    nucRadius = 2.6 * (1 + v * rng.uniform(-0.2, 0.25));
    share *= 1 + v * rng.uniform(-0.5, 0.5);
    const int nMimic = int(rng.next() % 3);  // 0, 1 or 2 look-alike regions
    const double mimicShare = v * rng.uniform(0.03, 0.15);
    for (int k = 0; k < nMimic; ++k) {
      auto one = scatteredTumourEllipses(tissueLow, lw, lh, scale, mimicShare / nMimic, rng);
      if (!one.empty()) mimics.push_back(one.front());
    }
  }
  std::vector<Ellipse> ellipses;
  if (tumour && o.tumorTissueShare > 0)
    ellipses = scatteredTumourEllipses(tissueLow, lw, lh, scale, share, rng);
  else if (tumour)
    ellipses = tumourEllipses(tissueLow, lw, lh, scale, rng);
  for (const auto& e : ellipses) out.tumour.add(ellipsePolygon(e));
  out.lookAlikeRegions = int(mimics.size());
  out.tumourShareOfTissue = tumourShareOfTissue(ellipses, tissueLow, lw, lh, scale);

  VImage up = field.resize(scale, VImage::option()->set("kernel", VIPS_KERNEL_LINEAR))
                  .crop(0, 0, W, H);
  VImage alpha = (up - cut) * 60;
  alpha = (alpha > 0.0).ifthenelse(alpha, 0.0);
  alpha = (alpha < 1.0).ifthenelse(alpha, 1.0);  // soft edge, 0..1
  // Nuclei: worley distance below a radius; tumour nuclei are denser, larger, darker.
  auto nuclei = [&](int cell, double radius) {
    VImage d = VImage::worley(W, H, VImage::option()->set("cell_size", cell)->set("seed", rng.seed()));
    VImage n = (d * -1 + radius);  // > 0 inside a nucleus
    n = (n > 0.0).ifthenelse(n, 0.0);
    return (n < 1.0).ifthenelse(n, 1.0);
  };
  VImage normalNuc = nuclei(int(std::lround(nucCell)), nucRadius);  // 30, 2.6 without variation
  VImage stromaTex = VImage::perlin(W, H, VImage::option()->set("cell_size", 16)->set("seed", rng.seed()));
  VImage eosin = constant(up, {232, 158, 198}) + stromaTex * 24;
  VImage tissue = eosin * (normalNuc * -1 + 1) + constant(up, {120, 80, 165}) * normalNuc;
  VImage xy, x, y;
  auto inside = [&](const std::vector<Ellipse>& list) {  // mask of the union of the ellipses
    if (xy.is_null()) {
      xy = VImage::xyz(W, H).cast(VIPS_FORMAT_FLOAT);
      x = xy.extract_band(0), y = xy.extract_band(1);
    }
    VImage in;
    for (const auto& e : list) {
      const double c = std::cos(e.angle), s = std::sin(e.angle);
      VImage u = ((x - e.cx) * c + (y - e.cy) * s) / e.a;
      VImage w = ((x - e.cx) * -s + (y - e.cy) * c) / e.b;
      VImage m = (u * u + w * w) < 1.0;
      in = in.is_null() ? m : (in | m);
    }
    return in;
  };
  if (!mimics.empty()) {  // benign look-alikes: small, very dense, dark round nuclei
    VImage mimicNuc = nuclei(9, 3.0);
    VImage mimicTissue = (eosin - 12) * (mimicNuc * -1 + 1) + constant(up, {62, 42, 112}) * mimicNuc;
    tissue = inside(mimics).ifthenelse(mimicTissue, tissue);
  }
  if (!ellipses.empty()) {
    VImage tumourNuc = nuclei(14, 4.2);
    VImage tumourTissue = (eosin - 20) * (tumourNuc * -1 + 1) + constant(up, {70, 35, 120}) * tumourNuc;
    tissue = inside(ellipses).ifthenelse(tumourTissue, tissue);
  }
  if (v > 0) tissue = tissue.linear({gain[0], gain[1], gain[2]}, {offset[0], offset[1], offset[2]});
  VImage background = constant(up, {240, 238, 242});
  VImage grain = VImage::gaussnoise(W, H, VImage::option()->set("sigma", 3.0)->set("mean", 0.0)
                                              ->set("seed", rng.seed()));
  VImage rgb = background * (alpha * -1 + 1) + tissue * alpha + grain;
  rgb = rgb.cast(VIPS_FORMAT_UCHAR).copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
  const double pxPerMm = 1000.0 / o.mpp;
  rgb.tiffsave(file.c_str(), VImage::option()
                                 ->set("tile", true)
                                 ->set("tile_width", o.tileSize)
                                 ->set("tile_height", o.tileSize)
                                 ->set("pyramid", true)
                                 ->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_JPEG)
                                 ->set("Q", o.jpegQuality)
                                 ->set("resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM)
                                 ->set("xres", pxPerMm)
                                 ->set("yres", pxPerMm)
                                 ->set("strip", true));
}

/// Largest-remainder apportionment of round(n * fraction) slides over the two classes of `size`
/// members, at most `available[c]` from class c.
std::array<int, 2> apportion(const int size[2], const int available[2], int n, double fraction) {
  std::array<int, 2> quota{};
  double remainder[2];
  for (int c = 0; c < 2; ++c) {
    const double q = size[c] * fraction;
    quota[c] = std::min(int(std::floor(q)), available[c]);
    remainder[c] = q - std::floor(q);
  }
  int left = int(std::lround(n * fraction)) - quota[0] - quota[1];
  for (int c : {remainder[1] >= remainder[0] ? 1 : 0, remainder[1] >= remainder[0] ? 0 : 1})
    if (left > 0 && quota[c] < available[c]) ++quota[c], --left;
  return quota;
}

}  // namespace


std::vector<SynthSlide> synthesizeCohort(const std::string& outDir, const SynthOptions& options) {
  options.validate();
  detail::ensureVips();
  namespace fs = std::filesystem;
  // Weak-label mode writes no annotations: tiling then labels every patch with its slide's label.
  const bool weak = options.tumorTissueShare > 0;
  const fs::path annotationsDir = fs::path(outDir) / "annotations";
  fs::create_directories(fs::path(outDir) / "slides");
  if (!weak) fs::create_directories(annotationsDir);
  Rng master{options.seed * 0x9e3779b97f4a7c15ull + 0x1234567ull};
  // Labels: exactly round(n * tumorFraction) tumours, placed by a seeded shuffle. Splits are
  // stratified per label so that the test (and val) split holds both classes whenever it can.
  const int n = options.numSlides;
  const int nTumour = int(std::lround(n * options.tumorFraction));
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  for (int i = n - 1; i > 0; --i) std::swap(order[i], order[int(master.next() % uint64_t(i + 1))]);
  std::vector<bool> isTumour(n, false);
  for (int k = 0; k < nTumour; ++k) isTumour[order[k]] = true;
  std::vector<int> members[2];
  for (int i = 0; i < n; ++i) members[isTumour[i] ? 1 : 0].push_back(i);
  // Test slides are the last of each class, val slides the ones before them.
  std::vector<std::string> split(n, "train");
  const int size[2] = {int(members[0].size()), int(members[1].size())};
  const auto test = apportion(size, size, n, options.testFraction);
  const int left[2] = {size[0] - test[0], size[1] - test[1]};
  const auto val = apportion(size, left, n, options.valFraction);
  for (int c = 0; c < 2; ++c)
    for (int k = 0; k < test[c] + val[c]; ++k)
      split[members[c][size[c] - 1 - k]] = k < test[c] ? "test" : "val";
  std::ofstream csv(fs::path(outDir) / "cohort.csv");
  csv << "slide_id,path,label,split\n";
  std::vector<SynthSlide> out;
  for (int i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "synth_%03d", i);
    const std::string slidePath = (fs::path(outDir) / "slides" / (std::string(id) + ".tiff")).string();
    SynthSlide slide{id, isTumour[i] ? "tumor" : "normal", split[i], {}, 0, 0};
    try {
      writeSlide(slidePath, options, master.next(), isTumour[i], slide);
    } catch (const vips::VError& e) {
      vips_error_clear();
      throw SlideError("cannot write synthetic slide '" + slidePath + "': " + e.what());
    }
    const fs::path annotationFile = annotationsDir / (std::string(id) + ".geojson");
    if (!weak)
      slide.tumour.writeGeoJson(annotationFile.string());
    else
      fs::remove(annotationFile);  // one left by an earlier run would label this slide's patches
    csv << id << ",slides/" << id << ".tiff," << slide.label << ',' << slide.split << "\n";
    out.push_back(std::move(slide));
  }
  if (!csv.flush()) throw DataError("cannot write '" + outDir + "/cohort.csv'");
  std::error_code ec;
  if (weak && fs::is_empty(annotationsDir, ec)) fs::remove(annotationsDir, ec);
  return out;
}
#endif  // SLIDETRAIN_WITH_VIPS (NoVips.cpp has synthesizeCohort without it)

}  // namespace slidetrain::wsi
