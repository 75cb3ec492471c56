#include "src/eval/Report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "src/eval/EmbeddedVega.h"
#include "src/eval/ReportHtml.h"
#include "wsi/ImageIo.h"
#include "wsi/JpegWriter.h"
#include "wsi/Resample.h"

namespace slidetrain {

namespace {

using report::escapeHtml;

using report::writeChartRow;

void metricsSection(std::ostream& o, const ReportContent& c, std::vector<ChartSpec>& all) {
  const std::string unit = c.unit;
  o << "<h2 id=\"metrics\">Metrics (" << escapeHtml(unit) << ")</h2>\n";
  if (!c.metricsCaption.empty()) o << "<p>" << escapeHtml(c.metricsCaption) << "</p>\n";
  o << "<pre>" << escapeHtml(c.summaryText) << "</pre>\n";
  if (!c.hasMetrics) return;
  report::writeClassificationTables(o, c.metrics, c.classes);
  std::vector<ChartSpec> charts{confusionChart("confusion", "Confusion matrix (" + unit + ")",
                                               c.metrics.confusion, c.classes)};
  if (anyRoc(c.slideCurves)) {
    charts.push_back(rocChart("roc_" + unit, "ROC (" + unit + ")", c.slideCurves));
    charts.push_back(precisionRecallChart("pr_" + unit, "Precision-recall (" + unit + ")", c.slideCurves));
  }
  writeChartRow(o, charts, all);
  bool intervals = false;  // train's val patches have none (patches of a slide are not independent)
  for (const ScoredSet& set : c.slideCurves) intervals = intervals || set.auc.reps > 0;
  if (anyRoc(c.slideCurves) && intervals)
    o << "<p class=\"note\">AUC intervals: 95 % percentile bootstrap over the " << escapeHtml(unit)
      << " (resampled with replacement). AP: average precision (the step area, as scikit-learn's).</p>\n";
}

void patchSection(std::ostream& o, const ReportContent& c, std::vector<ChartSpec>& all) {
  if (!anyRoc(c.patchCurves)) return;
  o << "<h2 id=\"patches\">Patches</h2>\n<p class=\"note\">Each patch scored against its own label (from "
       "annotations, else its slide's). Patches of one slide are not independent samples, so no interval "
       "is given.</p>\n";
  writeChartRow(o, {rocChart("roc_patches", "ROC (patches)", c.patchCurves),
               precisionRecallChart("pr_patches", "Precision-recall (patches)", c.patchCurves)},
           all);
}

void trainingSection(std::ostream& o, const ReportContent& c, std::vector<ChartSpec>& all) {
  o << "<h2 id=\"training\">Training</h2>\n";
  const std::vector<ChartSpec> charts = trainingCharts(c.training);
  if (!c.training.found) {
    o << "<p class=\"note\">No metrics.jsonl in the run folder: no training curves.</p>\n";
    return;
  }
  if (charts.empty()) {
    o << "<p class=\"note\">metrics.jsonl holds no epoch to draw.</p>\n";
    return;
  }
  const EpochRecord& last = c.training.epochs.back();
  double seconds = 0;
  for (const EpochRecord& e : c.training.epochs) seconds += std::isfinite(e.seconds) ? e.seconds : 0;
  char line[200];
  std::snprintf(line, sizeof line, "%zu epoch%s in metrics.jsonl, %lld optimizer steps, %.1f s of training passes",
                c.training.epochs.size(), c.training.epochs.size() == 1 ? "" : "s",
                static_cast<long long>(last.step), seconds);
  o << "<p>" << line;
  if (last.worldSize > 0) o << " on " << last.worldSize << " rank" << (last.worldSize == 1 ? "" : "s");
  if (!last.device.empty()) o << " (" << escapeHtml(last.device) << ")";
  o << ".</p>\n";
  writeChartRow(o, charts, all);
  if (last.ranks.empty()) return;
  // The last epoch per rank: a slow or starved rank holds every other one at the all-reduce.
  o << "<table class=\"num\"><caption>Per rank, epoch " << last.epoch
    << "</caption>\n<tr><th>rank</th><th>patches/s</th><th>data wait %</th><th>GPU busy %</th></tr>\n";
  for (size_t r = 0; r < last.ranks.size(); ++r) {
    const RankRecord& k = last.ranks[r];
    const std::string busy = report::formatNumber(k.gpuBusyPct, "%.0f");
    o << "<tr><td>" << r << "</td><td>" << report::formatNumber(k.patchesPerS, "%.1f") << "</td><td>"
      << report::formatNumber(k.dataWaitPct, "%.1f") << "</td><td>" << (busy.empty() ? "not measured" : busy) << "</td></tr>\n";
  }
  o << "</table>\n";
}

}  // namespace

std::array<uint8_t, 3> heatmapColour(double p) {
  p = std::clamp(p, 0.0, 1.0);
  return {static_cast<uint8_t>(255 * p), 40, static_cast<uint8_t>(255 * (1 - p))};
}

wsi::RgbImage writeHeatmap(const std::string& slidePath, const wsi::SlideOptions& options,
                           const std::vector<wsi::PatchRequest>& patches, const std::vector<double>& prob,
                           const std::string& pngPath, int maxSide) {
  if (patches.size() != prob.size()) throw std::invalid_argument("writeHeatmap: size mismatch");
  auto slide = wsi::Slide::open(slidePath, options);
  double ds = 1;
  wsi::RgbImage img = slide->thumbnail(maxSide, &ds);
  for (size_t i = 0; i < patches.size(); ++i) {
    const double p = prob[i];
    if (std::isnan(p)) continue;
    const auto& r = patches[i];
    const double side0 = (r.readSize > 0 ? r.readSize : r.size) * slide->levelDownsample(r.level);
    const int x0 = static_cast<int>(r.x / ds), y0 = static_cast<int>(r.y / ds);
    const int x1 = std::min(img.width, static_cast<int>(std::ceil((r.x + side0) / ds)));
    const int y1 = std::min(img.height, static_cast<int>(std::ceil((r.y + side0) / ds)));
    const std::array<uint8_t, 3> colour = heatmapColour(p);
    for (int y = std::max(0, y0); y < y1; ++y)
      for (int x = std::max(0, x0); x < x1; ++x) {
        uint8_t* px = img.at(x, y);
        for (int c = 0; c < 3; ++c) px[c] = static_cast<uint8_t>(0.45 * px[c] + 0.55 * colour[c]);
      }
  }
  wsi::writePng(img, pngPath, "heatmap");
  return img;
}

std::string heatmapPreview(const wsi::RgbImage& heatmap, int maxSide) {
  const int longer = std::max(heatmap.width, heatmap.height);
  if (longer <= maxSide) return wsi::encodeJpeg(heatmap, 80);
  const double f = static_cast<double>(maxSide) / longer;
  return wsi::encodeJpeg(wsi::resizeRgb(heatmap, std::max(1, static_cast<int>(std::lround(heatmap.width * f))),
                                        std::max(1, static_cast<int>(std::lround(heatmap.height * f)))),
                         80);
}

void writeReportHtml(const std::string& path, const ReportContent& c) {
  std::ostringstream o;
  std::vector<ChartSpec> charts;
  std::vector<std::pair<std::string, std::string>> nav{{"metrics", "metrics"}};
  if (anyRoc(c.patchCurves)) nav.emplace_back("patches", "patches");
  nav.emplace_back("training", "training");
  if (!c.rows.empty()) nav.emplace_back("rows", c.unit);
  nav.emplace_back("qc", "quality control");
  nav.emplace_back("run", "run");
  report::writePageStart(o, c.title, nav);
  metricsSection(o, c, charts);
  patchSection(o, c, charts);
  trainingSection(o, c, charts);
  if (!c.rows.empty()) {  // train's report has no slide table (predict's has)
    std::string heading = c.unit;
    if (!heading.empty()) heading[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(heading[0])));
    o << "<h2 id=\"rows\">" << escapeHtml(heading) << "</h2>\n";
    report::writeRowTable(o, c.rows, c.unit);
  }
  o << "<h2 id=\"qc\">Quality control</h2>\n";
  if (c.qc.empty() && !c.qcNone.empty()) o << "<p>" << escapeHtml(c.qcNone) << "</p>\n";
  else if (c.qc.empty()) o << "<p>Every " << escapeHtml(report::singular(c.unit)) << " was scored; nothing to report.</p>\n";
  else {
    o << "<ul>\n";
    for (const std::string& q : c.qc) o << "<li>" << escapeHtml(q) << "</li>\n";
    o << "</ul>\n";
  }
  o << "<h2 id=\"run\">Run</h2>\n";
  report::writeFacts(o, c.run);
  for (const ReportFact& f : c.configs)
    o << "<details><summary>" << escapeHtml(f.name) << "</summary><pre>" << escapeHtml(f.value) << "</pre></details>\n";
  report::writePageEnd(o, charts);
  report::writePageFile(path, o.str());
}

}  // namespace slidetrain
