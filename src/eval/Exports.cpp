#include "src/eval/Exports.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "src/data/SplitData.h"
#include "src/eval/GridUnion.h"
#include "src/eval/Report.h"
#include "wsi/Errors.h"
#include "wsi/ImageIo.h"
#include "wsi/JsonWriter.h"
#include "wsi/Slide.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

// Classes past a binary task's two: matplotlib's tab10 after its blue and red.
constexpr std::array<std::array<uint8_t, 3>, 8> kPalette{{{44, 160, 44},
                                                          {255, 127, 14},
                                                          {148, 103, 189},
                                                          {140, 86, 75},
                                                          {227, 119, 194},
                                                          {127, 127, 127},
                                                          {188, 189, 34},
                                                          {23, 190, 207}}};

void writeColour(wsi::JsonWriter& w, const std::array<uint8_t, 3>& c) {
  w.beginArray().value(int(c[0])).value(int(c[1])).value(int(c[2])).endArray();
}

void writeClassification(wsi::JsonWriter& w, const std::string& name, int c, int k) {
  w.key("classification").beginObject().key("name").value(name).key("color");
  writeColour(w, classColour(c, k));
  w.endObject();
}

void writeRing(wsi::JsonWriter& w, const GridRing& ring, double origin, double step) {
  w.beginArray();
  for (const GridPoint& p : ring)
    w.beginArray().value(origin + double(p.x) * step).value(origin + double(p.y) * step).endArray();
  w.endArray();
}

}  // namespace

bool SlidePredictions::scored(size_t i) const { return !std::isnan(probs[i * numClasses()]); }

int SlidePredictions::predicted(size_t i) const {
  const float* p = probs.data() + i * numClasses();
  return static_cast<int>(std::max_element(p, p + numClasses()) - p);
}

double SlidePredictions::positive(size_t i) const { return 1.0 - probs[i * numClasses()]; }

std::array<int64_t, 2> SlidePredictions::cell(size_t i) const {
  // The patch's centre, x + side0 / 2, lies in cell floor((x + side0/2 - cellOrigin) / step0).
  return {static_cast<int64_t>(std::floor((double(origins[i][0]) + step0 / 2) / step0)),
          static_cast<int64_t>(std::floor((double(origins[i][1]) + step0 / 2) / step0))};
}

std::array<uint8_t, 3> classColour(int c, int numClasses) {
  if (c == 0) return heatmapColour(0);
  if (c == 1) return numClasses == 2 ? heatmapColour(1) : std::array<uint8_t, 3>{255, 40, 0};
  return kPalette[size_t(c - 2) % kPalette.size()];
}

void writePredictionsGeoJson(const SlidePredictions& s, std::ostream& out) {
  const int k = static_cast<int>(s.numClasses());
  // Compact separators (large slides have 10^5 tiles), one feature per line; 9 significant
  // digits give the float probabilities back exactly and level-0 coordinates below 10^7 pixels
  // to 0.01 pixel.
  wsi::JsonStyle style = wsi::JsonStyle::compact();
  style.significantDigits = 9;
  wsi::JsonWriter w(out, style);
  w.beginObject().key("type").value("FeatureCollection").key("features").beginArray(wsi::JsonLayout::OnePerLine);
  std::vector<GridPoint> positiveCells;
  for (size_t i = 0; i < s.origins.size(); ++i) {
    if (!s.scored(i)) continue;
    const double x = double(s.origins[i][0]), y = double(s.origins[i][1]), d = s.side0;
    w.beginObject().key("type").value("Feature");
    // Polygon: one closed ring, counter-clockwise by RFC 7946's convention (x right, y up).
    w.key("geometry").beginObject().key("type").value("Polygon").key("coordinates").beginArray().beginArray();
    const double ring[5][2] = {{x, y}, {x + d, y}, {x + d, y + d}, {x, y + d}, {x, y}};
    for (const auto& v : ring) w.beginArray().value(v[0]).value(v[1]).endArray();
    w.endArray().endArray().endObject();
    const int pred = s.predicted(i);
    w.key("properties").beginObject().key("objectType").value("tile");
    writeClassification(w, s.classes[size_t(pred)], pred, k);
    w.key("measurements").beginObject();
    for (int c = 0; c < k; ++c)
      w.key("prob_" + s.classes[size_t(c)]).value(double(s.probs[i * size_t(k) + size_t(c)]));
    w.endObject().endObject().endObject();
    if (k == 2 && pred == 1) {
      const auto c = s.cell(i);
      positiveCells.push_back({c[0], c[1]});
    }
  }
  if (!positiveCells.empty()) {
    const std::vector<GridPolygon> region = unionOfCells(positiveCells);
    w.beginObject().key("type").value("Feature");
    w.key("geometry").beginObject().key("type").value("MultiPolygon").key("coordinates").beginArray();
    for (const GridPolygon& p : region) {
      w.beginArray();
      writeRing(w, p.outer, s.cellOrigin(), s.step0);
      for (const GridRing& h : p.holes) writeRing(w, h, s.cellOrigin(), s.step0);
      w.endArray();
    }
    w.endArray().endObject();
    w.key("properties").beginObject().key("objectType").value("annotation");
    w.key("name").value(s.classes[1] + " (predicted)");
    writeClassification(w, s.classes[1], 1, k);
    w.key("measurements").beginObject().key("patches").value(positiveCells.size()).endObject();
    w.endObject().endObject();
  }
  w.endArray().endObject();
  out << "\n";
}

HeatmapRaster rasterizeHeatmap(const SlidePredictions& s, int64_t width0, int64_t height0,
                               int minLongSide) {
  if (!(s.step0 > 0) || width0 <= 0 || height0 <= 0)
    throw std::invalid_argument("rasterizeHeatmap: slide " + s.slideId + " has no grid or no size");
  HeatmapRaster r;
  const double cellsAlongLongSide = double(std::max(width0, height0)) / s.step0;
  const int finest = std::max(1, static_cast<int>(std::floor(s.step0)));  // downsample >= 1
  r.pixelsPerCell = std::clamp(static_cast<int>(std::ceil(minLongSide / cellsAlongLongSide)), 1, finest);
  r.downsample = s.step0 / r.pixelsPerCell;
  // ceil, less a hair for the rounding of step0 / k when the slide is a whole number of cells.
  const double w = std::ceil(double(width0) / r.downsample - 1e-6);
  const double h = std::ceil(double(height0) / r.downsample - 1e-6);
  if (w * h * 4 > 4e9)
    throw std::invalid_argument("heatmap TIFF of " + s.slideId + " would be " + std::to_string(int64_t(w)) +
                                "x" + std::to_string(int64_t(h)) + ": raise tiling.stride");
  r.width = static_cast<int>(w);
  r.height = static_cast<int>(h);
  r.rgba.assign(size_t(r.width) * size_t(r.height) * 4, 0);
  const int64_t k = r.pixelsPerCell;
  const int64_t offset = std::llround(s.cellOrigin() / r.downsample);
  for (size_t i = 0; i < s.origins.size(); ++i) {
    if (!s.scored(i)) continue;
    const auto c = s.cell(i);
    const std::array<uint8_t, 3> colour = heatmapColour(s.positive(i));
    const int64_t u0 = std::max<int64_t>(0, c[0] * k + offset), u1 = std::min<int64_t>(r.width, (c[0] + 1) * k + offset);
    const int64_t v0 = std::max<int64_t>(0, c[1] * k + offset), v1 = std::min<int64_t>(r.height, (c[1] + 1) * k + offset);
    for (int64_t v = v0; v < v1; ++v)
      for (int64_t u = u0; u < u1; ++u) {
        uint8_t* px = r.rgba.data() + (size_t(v) * size_t(r.width) + size_t(u)) * 4;
        px[0] = colour[0], px[1] = colour[1], px[2] = colour[2], px[3] = 255;
      }
  }
  return r;
}

std::vector<SlidePredictions> slidePredictions(const SplitData& data, const float* probs,
                                               const std::vector<std::string>& classes, int strideOut) {
  const size_t k = classes.size();
  std::vector<SlidePredictions> slides(data.paths.size());
  for (size_t s = 0; s < slides.size(); ++s) slides[s].slideId = data.slideIds[s], slides[s].classes = classes;
  for (size_t i = 0; i < data.samples.size(); ++i) {
    const auto& r = data.samples[i];
    SlidePredictions& sp = slides[size_t(r.slide)];
    if (sp.origins.empty()) {
      sp.side0 = (r.readSize > 0 ? r.readSize : r.size) * data.levelDownsample[size_t(r.slide)];
      sp.step0 = double(strideOut > 0 ? strideOut : r.size) * sp.side0 / r.size;
    }
    sp.origins.push_back({r.x, r.y});
    sp.probs.insert(sp.probs.end(), probs + i * k, probs + (i + 1) * k);
  }
  return slides;
}

int writeSlideExports(const SplitData& data, const float* probs, const std::vector<std::string>& classes,
                      int strideOut, const std::string& dir) {
  fs::create_directories(dir);
  const size_t k = classes.size();
  const std::vector<SlidePredictions> slides = slidePredictions(data, probs, classes, strideOut);
  int written = 0;
  for (size_t s = 0; s < slides.size(); ++s) {
    const SlidePredictions& sp = slides[s];
    const std::string json = (fs::path(dir) / (sp.slideId + ".geojson")).string();
    std::ofstream out(json);
    writePredictionsGeoJson(sp, out);
    if (!out.flush()) throw wsi::DataError("cannot write '" + json + "'");
    ++written;
#ifdef SLIDETRAIN_WITH_VIPS
    if (sp.origins.empty()) continue;  // no grid to draw (the slide had no patch)
    auto slide = wsi::Slide::open(data.paths[s], data.slideOptions[s]);
    const auto [width0, height0] = slide->levelDimensions(0);
    const HeatmapRaster r = rasterizeHeatmap(sp, width0, height0);
    wsi::PyramidTiffOptions o;
    const std::optional<double> mpp = slide->mpp();
    if (mpp) o.pixelsPerMm = 1000.0 / (*mpp * r.downsample);
    char description[512];
    std::snprintf(description, sizeof description,
                  "slidetrain heatmap of %s: P(%s) per patch, blue 0 to red 1, transparent where no "
                  "patch was scored. Pixel (u, v) of this level covers level-0 pixels [u*d, (u+1)*d) x "
                  "[v*d, (v+1)*d) of the slide (%lldx%lld), d = %.17g",
                  sp.slideId.c_str(), k == 2 ? classes[1].c_str() : ("not " + classes[0]).c_str(),
                  static_cast<long long>(width0), static_cast<long long>(height0), r.downsample);
    o.description = description;
    wsi::writePyramidTiff(r.rgba.data(), r.width, r.height,
                          (fs::path(dir) / (sp.slideId + "_heatmap.tiff")).string(), o);
    ++written;
#else
    if (s == 0)
      std::printf("predict.exports: this slidetrain has no libvips (SLIDETRAIN_WITH_VIPS=OFF): heatmap "
                  "TIFFs are not written, the GeoJSON is\n");
#endif
  }
  return written;
}

}  // namespace slidetrain
