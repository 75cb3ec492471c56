#include "src/eval/SlideViewer.h"

#include <filesystem>

#include "src/eval/Viewer.h"
#include "wsi/DeepZoom.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

DeepZoomSource sourceOf(const wsi::DeepZoomLayout& l, const std::string& name) {
  DeepZoomSource s;
  s.url = urlEncodePathPart(name) + "_files/";
  s.format = l.format;
  s.tileSize = l.tileSize;
  s.overlap = l.overlap;
  s.width = l.width;
  s.height = l.height;
  return s;
}

}  // namespace

std::string writeSlideViewer(const std::string& dir, const ViewerSlide& slide, const SlidePredictions& predictions,
                             int maxSide, const std::string& backLink) {
  fs::create_directories(dir);
  ViewerPage page;
  page.title = slide.slideId;
  page.facts = slide.facts;
  page.backLink = backLink;
  const wsi::DeepZoomLayout image =
      wsi::writeSlideDeepZoom(slide.path, slide.options, maxSide, (fs::path(dir) / slide.slideId).string());
  page.slide = sourceOf(image, slide.slideId);
  bool anyScored = false;
  for (size_t i = 0; i < predictions.origins.size() && !anyScored; ++i) anyScored = predictions.scored(i);
  if (anyScored && predictions.step0 > 0) {
    const auto slideFile = wsi::Slide::open(slide.path, slide.options);
    const auto [width0, height0] = slideFile->levelDimensions(0);
    const HeatmapRaster r = rasterizeHeatmap(predictions, width0, height0);
    const std::string name = slide.slideId + "_heatmap";
    ViewerOverlay heatmap;
    heatmap.name = "heatmap";
    heatmap.legend = predictions.classes.size() == 2 ? "P(" + predictions.classes[1] + ") 0 to 1"
                                                     : "P(not " + predictions.classes[0] + ") 0 to 1";
    heatmap.source =
        sourceOf(wsi::writeOverlayDeepZoom(r.rgba.data(), r.width, r.height, (fs::path(dir) / name).string()), name);
    // The raster's pixel u covers level-0 [u * d, (u + 1) * d); the slide image spans width0.
    heatmap.worldWidth = r.width * r.downsample / double(width0);
    page.overlays.push_back(heatmap);
  }
  const std::string file = slide.slideId + ".html";
  writeViewerHtml((fs::path(dir) / file).string(), page);
  return urlEncodePathPart(file);
}

}  // namespace slidetrain
