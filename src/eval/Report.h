#pragma once
// Prediction outputs for people: per-slide heatmaps of patch probabilities over the slide
// thumbnail, and report.html: one self-contained page per run (it opens offline from file://)
// tying together slides, scores, metrics, charts, training curves, quality control and the run.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "src/eval/Metrics.h"
#include "src/eval/ReportCharts.h"
#include "src/eval/TrainingLog.h"
#include "wsi/PatchStream.h"
#include "wsi/Slide.h"

namespace slidetrain {

/// The heatmaps' colour map: blue (0, 40, 255) at p = 0 to red (255, 40, 0) at p = 1, linear in
/// each channel (p is clamped to [0, 1]).
std::array<uint8_t, 3> heatmapColour(double p);

/// Draws each patch as a rectangle coloured from blue (p = 0) to red (p = 1), blended over the
/// slide thumbnail (longer side `maxSide`), and writes a PNG. NaN probabilities are not drawn.
/// Returns the image written.
wsi::RgbImage writeHeatmap(const std::string& slidePath, const wsi::SlideOptions& options,
                           const std::vector<wsi::PatchRequest>& patches, const std::vector<double>& prob,
                           const std::string& pngPath, int maxSide = 1024);

/// A JPEG of `heatmap` scaled down to a longer side of at most `maxSide`, for the report to carry
/// inline (the full PNG stays beside it, linked).
std::string heatmapPreview(const wsi::RgbImage& heatmap, int maxSide = 480);

/// One row of the report's slide table.
struct ReportRow {
  std::string slideId, label, prediction;
  std::string heatmap;      ///< the heatmap PNG, relative to the report ("" = none)
  std::string heatmapJpeg;  ///< heatmapPreview's bytes, shown inline ("" = the PNG is shown by its link)
  std::string tissue;       ///< the tissue QC picture (PNG), relative to the report ("" = none)
  std::string tissueJpeg;   ///< its preview, shown inline
  std::string viewer;       ///< the slide's viewer page, relative to the report, URL-encoded ("" = none)
  std::string note;         ///< why the slide has no score, if so
  size_t patches = 0;
  double score = 0;         ///< NaN: no score
};

/// A named entry of the run summary (or a YAML text, for configs).
struct ReportFact {
  std::string name, value;
};

/// What report.html shows; each section appears when it has something to show.
struct ReportContent {
  std::string title;
  std::string summaryText;           ///< the metrics as printed at the end of the run
  std::vector<std::string> classes;  ///< the class order; the last is the positive one
  std::string unit = "slides";       ///< what the rows and the metrics count ("slides", "patients")
  std::vector<ReportRow> rows;       ///< none: no table (train's report)
  bool hasMetrics = false;           ///< false: no labelled row with a score
  Metrics metrics;                   ///< of the labelled rows with a score
  std::string metricsCaption;        ///< how the rows were called (pooling method, threshold)
  std::vector<ScoredSet> slideCurves;  ///< ROC/PR at the rows' level (binary tasks)
  std::vector<ScoredSet> patchCurves;  ///< ROC/PR of single patches with a label (binary tasks)
  TrainingLog training;              ///< the training run's metrics.jsonl
  std::vector<ReportFact> run;       ///< command line, versions, ranks, device, times, ...
  std::vector<ReportFact> configs;   ///< title -> YAML text (shown folded)
  std::vector<std::string> qc;       ///< slides left out or without a score and why; other notes
  std::string qcNone;                ///< what the QC section says when `qc` is empty ("" = every row was scored)
};

/// Writes `content` as one HTML page with everything inline: text, tables, heatmap previews (the
/// full PNGs are linked), and charts drawn by vega-embed from Vega-Lite specs, the three vendored
/// libraries inlined as <script> text (src/eval/EmbeddedVega.h) with their licences in a folded
/// section. When every chart is drawn the page sets <body data-charts="N drawn, 0 failed">; a
/// chart that fails shows the error in its place and on the console.
void writeReportHtml(const std::string& path, const ReportContent& content);

}  // namespace slidetrain
