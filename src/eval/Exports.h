#pragma once
// Prediction exports for pathologists' tools (predict.exports; docs/training.md, Exports), per slide:
//   <slide_id>.geojson        QuPath GeoJSON: a "tile" per scored patch (its square in level-0
//                             pixels, the predicted class, the class probabilities as
//                             measurements) and, for a binary task, the patches predicted
//                             positive merged into one "annotation" (GridUnion.h)
//   <slide_id>_heatmap.tiff   the heatmap as a tiled pyramidal RGBA TIFF whose level 0 maps onto
//                             the slide by a single scale factor (OpenSlide: generic-tiff)
#include <array>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace slidetrain {

struct SplitData;

/// Level 0 of a heatmap TIFF has at least this many pixels along the slide's longer side (a
/// whole number of pixels per grid cell, so patch borders stay sharp when a viewer zooms in).
constexpr int kHeatmapTiffMinSide = 1024;

/// One slide's patch predictions on its tiling grid.
struct SlidePredictions {
  std::string slideId;
  std::vector<std::string> classes;  ///< class order; in a binary task the last is the positive
  double side0 = 0;                  ///< patch side in level-0 pixels
  double step0 = 0;                  ///< grid step (tiling.stride) in level-0 pixels
  std::vector<std::array<int64_t, 2>> origins;  ///< top-left corners, level-0 pixels
  /// origins.size() x classes.size(), row-major; a row of NaN is a skipped (unread) patch.
  std::vector<float> probs;

  size_t numClasses() const { return classes.size(); }
  bool scored(size_t i) const;
  /// Most probable class of patch i (ties: the lower index).
  int predicted(size_t i) const;
  /// P(not the first class): the positive class's probability in a binary task, as the heatmaps.
  double positive(size_t i) const;
  /// Grid cell of patch i: the stride-sized square centred on the patch (the patch square itself
  /// when the stride is the patch size). Cell (cx, cy) spans level-0
  /// [cellOrigin() + cx * step0, + step0) in x, likewise in y.
  std::array<int64_t, 2> cell(size_t i) const;
  double cellOrigin() const { return (side0 - step0) / 2; }
};

/// Colour of class c of k in the GeoJSON: a binary task's classes take the heatmap's two ends
/// (blue, red), further classes a fixed palette.
std::array<uint8_t, 3> classColour(int c, int numClasses);

/// Writes the FeatureCollection: one "tile" feature per scored patch (skipped ones are left
/// out), then, when there are two classes and some patch is predicted positive, one "annotation"
/// of the positive class whose MultiPolygon is the union of those patches' grid cells.
void writePredictionsGeoJson(const SlidePredictions& s, std::ostream& out);

/// The heatmap TIFF's full-resolution level: RGBA, heatmapColour(positive) opaque on each scored
/// patch's grid cell, (0, 0, 0, 0) elsewhere. Pixel (u, v) covers level-0 pixels
/// [u * downsample, (u + 1) * downsample) x [v * downsample, (v + 1) * downsample) of the slide;
/// width = ceil(width0 / downsample), height likewise, so the aspect ratio is the slide's.
struct HeatmapRaster {
  int width = 0, height = 0;
  int pixelsPerCell = 1;  ///< whole pixels per grid step
  double downsample = 1;  ///< level-0 pixels per raster pixel: step0 / pixelsPerCell
  std::vector<uint8_t> rgba;
};

/// pixelsPerCell is the smallest whole number giving at least `minLongSide` pixels along the
/// longer side, but no finer than the slide's level 0 (downsample >= 1).
HeatmapRaster rasterizeHeatmap(const SlidePredictions& s, int64_t width0, int64_t height0,
                               int minLongSide = kHeatmapTiffMinSide);

/// Each slide of `data` with its patches' predictions (probs: data.samples.size() x
/// classes.size(), row-major; `strideOut` as writeSlideExports'); a slide without patches has
/// no origins and no grid (step0 = 0).
std::vector<SlidePredictions> slidePredictions(const SplitData& data, const float* probs,
                                               const std::vector<std::string>& classes, int strideOut);

/// Writes <dir>/<slide_id>.geojson and <dir>/<slide_id>_heatmap.tiff for every slide of `data`
/// (probs: data.samples.size() x classes.size(), row-major). `strideOut` is tiling.stride in
/// output pixels (0 = the patch size). The TIFF's resolution tags carry the slide's mpp times
/// the downsample when the slide records an mpp. Without libvips only the GeoJSON is written
/// (said once on stdout). Returns the number of files written.
int writeSlideExports(const SplitData& data, const float* probs,
                      const std::vector<std::string>& classes, int strideOut,
                      const std::string& dir);

}  // namespace slidetrain
