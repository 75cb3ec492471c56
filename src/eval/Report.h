#pragma once
// Prediction outputs for people: per-slide heatmaps of patch probabilities over the slide
// thumbnail, and report.html tying slides, scores, metrics and heatmaps together.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "wsi/PatchStream.h"
#include "wsi/Slide.h"

namespace slidetrain {

/// The heatmaps' colour map: blue (0, 40, 255) at p = 0 to red (255, 40, 0) at p = 1, linear in
/// each channel (p is clamped to [0, 1]).
std::array<uint8_t, 3> heatmapColour(double p);

/// Draws each patch as a rectangle coloured from blue (p = 0) to red (p = 1), blended over the
/// slide thumbnail (longer side `maxSide`), and writes a PNG. NaN probabilities are not drawn.
void writeHeatmap(const std::string& slidePath, const wsi::SlideOptions& options,
                  const std::vector<wsi::PatchRequest>& patches, const std::vector<double>& prob,
                  const std::string& pngPath, int maxSide = 1024);

struct ReportRow {
  std::string slideId, label, prediction, heatmap;  ///< heatmap: path relative to the report
  size_t patches = 0;
  double score = 0;
};

/// Writes a self-contained HTML page (no scripts, no external assets besides the heatmaps).
void writeReportHtml(const std::string& path, const std::string& title,
                     const std::vector<ReportRow>& rows, const std::string& metricsText);

}  // namespace slidetrain
