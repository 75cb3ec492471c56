#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "src/eval/Exports.h"
#include "src/eval/Report.h"
#include "wsi/Annotations.h"
#include "wsi/Json.h"

using slidetrain::HeatmapRaster;
using slidetrain::SlidePredictions;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// A 3x3 block of 64-px patches (stride = size) at level-0 (0, 0): the centre one normal, the
// others tumour, and a skipped patch to the right of the block.
SlidePredictions ringOfTumour() {
  SlidePredictions s;
  s.slideId = "s1";
  s.classes = {"normal", "tumor"};
  s.side0 = s.step0 = 64;
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 3; ++x) {
      s.origins.push_back({x * 64, y * 64});
      const bool centre = x == 1 && y == 1;
      s.probs.push_back(centre ? 0.8f : 0.25f);
      s.probs.push_back(centre ? 0.2f : 0.75f);
    }
  s.origins.push_back({192, 0});
  s.probs.push_back(kNaN);
  s.probs.push_back(kNaN);
  return s;
}

slidetrain::wsi::JsonValue geoJson(const SlidePredictions& s) {
  std::ostringstream out;
  slidetrain::writePredictionsGeoJson(s, out);
  return slidetrain::wsi::parseJson(out.str(), "test.geojson");
}

std::vector<std::vector<double>> points(const slidetrain::wsi::JsonValue& ring) {
  std::vector<std::vector<double>> r;
  for (const auto& p : ring.array) r.push_back({p.array.at(0).number, p.array.at(1).number});
  return r;
}

using Ring = std::vector<std::vector<double>>;

}  // namespace

TEST(Exports, GeoJsonHasATilePerScoredPatchAndThePositiveRegion) {
  const auto doc = geoJson(ringOfTumour());
  ASSERT_EQ(doc.find("type")->string, "FeatureCollection");
  const auto& features = doc.find("features")->array;
  ASSERT_EQ(features.size(), 10u);  // 9 scored tiles + 1 annotation; the skipped patch is left out
  for (size_t i = 0; i < 9; ++i) {
    const auto& f = features[i];
    EXPECT_EQ(f.find("type")->string, "Feature");
    const auto& g = *f.find("geometry");
    EXPECT_EQ(g.find("type")->string, "Polygon");
    const double x = double(i % 3) * 64, y = double(i / 3) * 64;
    EXPECT_EQ(points(g.find("coordinates")->array.at(0)),
              (Ring{{x, y}, {x + 64, y}, {x + 64, y + 64}, {x, y + 64}, {x, y}}));
    const auto& p = *f.find("properties");
    EXPECT_EQ(p.find("objectType")->string, "tile");
    const bool centre = i == 4;
    EXPECT_EQ(p.find("classification")->find("name")->string, centre ? "normal" : "tumor");
    const auto& colour = p.find("classification")->find("color")->array;
    ASSERT_EQ(colour.size(), 3u);
    EXPECT_EQ(colour[0].number, centre ? 0 : 255);  // the heatmap's blue and red ends
    EXPECT_EQ(colour[2].number, centre ? 255 : 0);
    const auto& m = *p.find("measurements");
    EXPECT_NEAR(m.find("prob_tumor")->number, centre ? 0.2 : 0.75, 1e-6);
    EXPECT_NEAR(m.find("prob_normal")->number + m.find("prob_tumor")->number, 1.0, 1e-6);
  }
  const auto& a = features[9];
  const auto& props = *a.find("properties");
  EXPECT_EQ(props.find("objectType")->string, "annotation");
  EXPECT_EQ(props.find("classification")->find("name")->string, "tumor");
  EXPECT_EQ(props.find("measurements")->find("patches")->number, 8);
  EXPECT_EQ(a.find("geometry")->find("type")->string, "MultiPolygon");
  const auto& polys = a.find("geometry")->find("coordinates")->array;
  ASSERT_EQ(polys.size(), 1u);
  ASSERT_EQ(polys[0].array.size(), 2u);  // shell and the normal centre as a hole
  EXPECT_EQ(points(polys[0].array[0]), (Ring{{0, 0}, {192, 0}, {192, 192}, {0, 192}, {0, 0}}));
  EXPECT_EQ(points(polys[0].array[1]), (Ring{{64, 64}, {64, 128}, {128, 128}, {128, 64}, {64, 64}}));
}

TEST(Exports, GeoJsonReadsBackAsQuPathAnnotations) {
  // The project's own QuPath GeoJSON reader (what tiling uses for labels) takes the file as is.
  std::ostringstream out;
  slidetrain::writePredictionsGeoJson(ringOfTumour(), out);
  const auto a = slidetrain::wsi::Annotations::parseGeoJson(out.str(), "test.geojson");
  ASSERT_EQ(a.polygons().size(), 10u);
  const auto& region = a.polygons().back();
  EXPECT_EQ(region.className, "tumor");
  EXPECT_DOUBLE_EQ(region.area(), 8 * 64.0 * 64.0);
  EXPECT_TRUE(region.contains(32, 32));
  EXPECT_FALSE(region.contains(96, 96));  // the hole
  EXPECT_EQ(a.labelAt(96, 96), "normal");
}

TEST(Exports, OverlappingPatchesMergeTheirStrideCells) {
  // stride 64 < patch 128: each patch owns the 64-px cell centred on it, so the region of two
  // neighbours is 128 x 64 around their centres rather than the union of 128-px squares.
  SlidePredictions s;
  s.classes = {"normal", "tumor"};
  s.side0 = 128;
  s.step0 = 64;
  s.origins = {{0, 0}, {64, 0}};
  s.probs = {0.1f, 0.9f, 0.2f, 0.8f};
  const auto doc = geoJson(s);
  const auto& features = doc.find("features")->array;
  ASSERT_EQ(features.size(), 3u);
  EXPECT_EQ(points(features[0].find("geometry")->find("coordinates")->array.at(0)),
            (Ring{{0, 0}, {128, 0}, {128, 128}, {0, 128}, {0, 0}}));
  const auto& polys = features[2].find("geometry")->find("coordinates")->array;
  ASSERT_EQ(polys.size(), 1u);
  EXPECT_EQ(points(polys[0].array.at(0)), (Ring{{32, 32}, {160, 32}, {160, 96}, {32, 96}, {32, 32}}));
}

TEST(Exports, ThreeClassesGetTilesButNoRegion) {
  SlidePredictions s;
  s.classes = {"a", "b", "c"};
  s.side0 = s.step0 = 10;
  s.origins = {{0, 0}, {10, 0}};
  s.probs = {0.1f, 0.2f, 0.7f, 0.5f, 0.3f, 0.2f};
  const auto doc = geoJson(s);
  const auto& features = doc.find("features")->array;
  ASSERT_EQ(features.size(), 2u);
  EXPECT_EQ(features[0].find("properties")->find("classification")->find("name")->string, "c");
  EXPECT_EQ(features[1].find("properties")->find("classification")->find("name")->string, "a");
  EXPECT_EQ(slidetrain::classColour(2, 3), (std::array<uint8_t, 3>{44, 160, 44}));
  EXPECT_NE(slidetrain::classColour(1, 3), slidetrain::classColour(2, 3));
}

TEST(Exports, HeatmapRasterMapsOntoTheSlide) {
  // A 200 x 130 slide with 64-px cells: 3.125 cells along the longer side, so 16 pixels need 6
  // per cell: downsample 64/6, 19 x 13 pixels (ceil of 18.75 and 12.19), the slide's aspect.
  SlidePredictions s;
  s.classes = {"normal", "tumor"};
  s.side0 = s.step0 = 64;
  s.origins = {{64, 0}, {0, 64}, {128, 64}};
  s.probs = {0.0f, 1.0f, kNaN, kNaN, 0.75f, 0.25f};
  const HeatmapRaster r = slidetrain::rasterizeHeatmap(s, 200, 130, 16);
  EXPECT_EQ(r.pixelsPerCell, 6);
  EXPECT_DOUBLE_EQ(r.downsample, 64.0 / 6);
  EXPECT_EQ(r.width, 19);
  EXPECT_EQ(r.height, 13);
  EXPECT_LE(std::abs(r.height - r.width * 130.0 / 200), 1.0);
  auto px = [&](int u, int v) {
    const uint8_t* p = r.rgba.data() + (size_t(v) * size_t(r.width) + size_t(u)) * 4;
    return std::array<int, 4>{p[0], p[1], p[2], p[3]};
  };
  const auto red = slidetrain::heatmapColour(1.0), quarter = slidetrain::heatmapColour(0.25);
  for (int v = 0; v < 6; ++v)
    for (int u = 6; u < 12; ++u) EXPECT_EQ(px(u, v), (std::array<int, 4>{red[0], red[1], red[2], 255}));
  EXPECT_EQ(px(5, 0)[3], 0);   // left of the cell: no patch
  EXPECT_EQ(px(12, 0)[3], 0);  // right of it
  EXPECT_EQ(px(0, 6)[3], 0);   // the skipped patch is not drawn
  EXPECT_EQ(px(12, 6), (std::array<int, 4>{quarter[0], quarter[1], quarter[2], 255}));
  EXPECT_EQ(px(18, 11)[3], 0);  // beyond the last cell (x 192..200): transparent
}

TEST(Exports, HeatmapRasterIsNeverFinerThanLevelZero) {
  SlidePredictions s;
  s.classes = {"normal", "tumor"};
  s.side0 = s.step0 = 8;
  s.origins = {{0, 0}};
  s.probs = {0.5f, 0.5f};
  const HeatmapRaster r = slidetrain::rasterizeHeatmap(s, 100, 50, 1024);
  EXPECT_EQ(r.pixelsPerCell, 8);
  EXPECT_DOUBLE_EQ(r.downsample, 1.0);
  EXPECT_EQ(r.width, 100);
  EXPECT_EQ(r.height, 50);
}
