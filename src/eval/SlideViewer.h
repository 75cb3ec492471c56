#pragma once
// predict.viewer: per slide, the deep-zoom tiles of the slide and of its heatmap, and the page
// that shows them (src/eval/Viewer.h), in run_dir/viewer/:
//   <slide_id>.html            the page (OpenSeadragon inlined; opens from file://)
//   <slide_id>_files/          the slide's tiles, JPEG (libvips dzsave), and <slide_id>.dzi
//   <slide_id>_heatmap_files/  the heatmap's tiles, PNG with transparency, and <slide_id>_heatmap.dzi
// The .dzi files are for other viewers; the page carries their content inline.
#include <string>
#include <vector>

#include "src/eval/Exports.h"
#include "src/eval/Report.h"
#include "wsi/Slide.h"

namespace slidetrain {

/// A slide to show, with what the page says about it.
struct ViewerSlide {
  std::string slideId, path;
  wsi::SlideOptions options;
  std::vector<ReportFact> facts;  ///< label, prediction, score
};

/// Writes the tiles and the page of one slide into `dir`; the heatmap overlay (the heatmap
/// TIFF's raster, rasterizeHeatmap: a whole number of pixels per grid cell, transparent off the
/// patches) is left out when `predictions` has no scored grid. `maxSide`: longer side of the
/// slide image (wsi::writeSlideDeepZoom). `backLink`: the report, relative to `dir`. Returns the
/// page's file name (URL-encoded: "<slide_id>.html").
std::string writeSlideViewer(const std::string& dir, const ViewerSlide& slide, const SlidePredictions& predictions,
                             int maxSide, const std::string& backLink);

}  // namespace slidetrain
