#include "src/eval/Report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

#include "wsi/ImageIo.h"

namespace slidetrain {

namespace {

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

}  // namespace

std::array<uint8_t, 3> heatmapColour(double p) {
  p = std::clamp(p, 0.0, 1.0);
  return {static_cast<uint8_t>(255 * p), 40, static_cast<uint8_t>(255 * (1 - p))};
}

void writeHeatmap(const std::string& slidePath, const wsi::SlideOptions& options,
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
}

void writeReportHtml(const std::string& path, const std::string& title,
                     const std::vector<ReportRow>& rows, const std::string& metricsText) {
  std::ofstream o(path);
  if (!o) throw std::runtime_error(path + ": cannot write report");
  o << "<!doctype html><html><head><meta charset=\"utf-8\"><title>" << escape(title)
    << "</title><style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
       "td,th{border:1px solid #ccc;padding:4px 8px}.bad{background:#fdd}"
       "img{max-width:320px}</style></head><body>\n<h1>"
    << escape(title) << "</h1>\n<h2>Metrics</h2>\n<pre>" << escape(metricsText) << "</pre>\n"
    << "<h2>Slides</h2>\n<table><tr><th>slide</th><th>label</th><th>prediction</th><th>score</th>"
       "<th>patches</th><th>heatmap (blue 0 &rarr; red 1)</th></tr>\n";
  for (const auto& r : rows) {
    o << "<tr" << (!r.label.empty() && r.label != r.prediction ? " class=\"bad\"" : "") << "><td>" << escape(r.slideId)
      << "</td><td>" << escape(r.label) << "</td><td>" << escape(r.prediction) << "</td><td>"
      << r.score << "</td><td>" << r.patches << "</td><td>";
    if (!r.heatmap.empty()) o << "<img src=\"" << escape(r.heatmap) << "\" alt=\"heatmap\">";
    o << "</td></tr>\n";
  }
  o << "</table>\n</body></html>\n";
}

}  // namespace slidetrain
