#pragma once
// A slide viewer page: one self-contained HTML file per slide that shows the slide's deep-zoom
// tiles (wsi/DeepZoom.h) with overlays such as the prediction heatmap, drawn by OpenSeadragon
// inlined into the page (third_party/openseadragon/README.md). It opens from file:// with no
// server: the tile sources are written into the page as objects (browsers refuse to fetch a .dzi
// file from file://), and the only requests it makes are for the tile images beside it.
#include <string>
#include <vector>

#include "src/eval/EmbeddedVega.h"  // EmbeddedFile
#include "src/eval/Report.h"        // ReportFact

namespace slidetrain {

/// OpenSeadragon's build and licence, carried in the program: openseadragon.min.js,
/// LICENSE.txt, versions.txt. Defined in the generated <build>/generated/EmbeddedOpenSeadragon.cpp.
const std::vector<EmbeddedFile>& embeddedOpenSeadragonFiles();

/// A Deep Zoom image (its .dzi) as the page addresses it.
struct DeepZoomSource {
  std::string url;        ///< the tiles' folder relative to the page, ending in '/' ("a_files/")
  std::string format;     ///< "jpeg", "png"
  int tileSize = 254, overlap = 1, width = 0, height = 0;
};

/// A layer over the slide: a pyramid in the slide's coordinates.
struct ViewerOverlay {
  std::string name;       ///< short, shown on its toggle ("heatmap")
  std::string legend;     ///< what its colours mean
  DeepZoomSource source;
  double worldWidth = 1;  ///< its width in units of the slide's width (same top-left corner)
  double opacity = 0.5;   ///< the slider's start
};

/// One viewer page.
struct ViewerPage {
  std::string title;                  ///< the slide id
  std::vector<ReportFact> facts;      ///< label, prediction, score, ... shown in the header
  std::string backLink;               ///< the report, relative to the page ("" = none)
  DeepZoomSource slide;
  std::vector<ViewerOverlay> overlays;
};

/// `s` with every byte outside RFC 3986's unreserved set percent-encoded (a file name in a URL).
std::string urlEncodePathPart(const std::string& s);

/// OpenSeadragon's inline form of a .dzi: {"Image": {"xmlns", "Url", "Format", "Overlap",
/// "TileSize", "Size": {"Width", "Height"}}}, as compact JSON.
std::string deepZoomTileSourceJson(const DeepZoomSource& s);

/// Writes the page: header (title, facts, a toggle and an opacity slider per overlay, zoom and
/// home buttons), the viewer, OpenSeadragon's script and licence. OpenSeadragon draws with its
/// canvas drawer (its WebGL drawer cannot use file:// images as textures) and without its own
/// buttons (their images would be fetched from a prefixUrl). The page reports its state on
/// <body data-viewer>: "loaded N images" once every image has all the tiles it needs for the
/// view, "failed: <why>" when an image or tile cannot be loaded; data-tiles counts the tiles
/// loaded per image ("slide:12,heatmap:5").
void writeViewerHtml(const std::string& path, const ViewerPage& page);

}  // namespace slidetrain
