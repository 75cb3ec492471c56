// ReportHtml: see ReportHtml.h.
#include "src/eval/ReportHtml.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "src/eval/EmbeddedVega.h"
#include "wsi/JsonWriter.h"

namespace slidetrain::report {
namespace {

std::string fmt(double v, const char* format = "%.4f") { return formatNumber(v, format); }

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "table.num td{text-align:right;font-variant-numeric:tabular-nums}caption{text-align:left;font-weight:bold}"
    "tr.sep td,tr.sep th{border-top:2px solid #999}.bad{background:#fdd}img{max-width:320px}"
    "table.facts td{white-space:pre-wrap;font-family:monospace}.charts{display:flex;flex-wrap:wrap;gap:1.5em}"
    ".chart-error{color:#b00;border:1px solid #b00;padding:1em}nav a{margin-right:1em}"
    "details pre{background:#f6f6f6;padding:0.5em;overflow-x:auto}.note{color:#555}th.chosen,td.chosen{background:#eef}"
    "table.num td{white-space:nowrap}";

// Draws every chart; marks each failure in its place and on the console, and says on <body>
// when all are settled (tests/python/report_browser.py waits for that attribute).
constexpr const char* kLoader = R"JS(
(function () {
  var specs = JSON.parse(document.getElementById('report-chart-specs').textContent);
  var names = Object.keys(specs), drawn = 0, failed = 0;
  function settle() {
    if (drawn + failed === names.length)
      document.body.setAttribute('data-charts', drawn + ' drawn, ' + failed + ' failed');
  }
  names.forEach(function (name) {
    var el = document.getElementById('chart-' + name);
    var fail = function (e) {
      failed++;
      el.className += ' chart-error';
      el.textContent = 'chart "' + name + '" could not be drawn: ' + e;
      console.error('report.html: chart ' + name + ': ' + e);
      settle();
    };
    try {
      vegaEmbed(el, specs[name], {mode: 'vega-lite', renderer: 'svg',
                                  actions: {export: true, source: false, compiled: false, editor: false}})
        .then(function () { drawn++; settle(); }, fail);
    } catch (e) { fail(e); }
  });
  settle();
})();
)JS";

}  // namespace

std::string formatNumber(double v, const char* format) {
  if (!std::isfinite(v)) return "";
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

std::string duration(double seconds) {
  char b[64];
  if (seconds < 60) std::snprintf(b, sizeof b, "%.1f s", seconds);
  else std::snprintf(b, sizeof b, "%d min %.0f s", static_cast<int>(seconds / 60), std::fmod(seconds, 60.0));
  return b;
}

std::string localTime(std::time_t t) {
  char b[64];
  std::strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S %z", std::localtime(&t));
  return b;
}

void writePageStart(std::ostream& o, const std::string& title,
                    const std::vector<std::pair<std::string, std::string>>& nav) {
  o << "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << escapeHtml(title)
    << "</title>\n<style>" << kStyle << "</style></head>\n<body>\n<h1>" << escapeHtml(title) << "</h1>\n<nav>";
  for (const auto& [anchor, text] : nav) o << "<a href=\"#" << escapeHtml(anchor) << "\">" << escapeHtml(text) << "</a>";
  o << "</nav>\n";
}

void writePageEnd(std::ostream& o, const std::vector<ChartSpec>& charts) {
  writeLicences(o);
  writeChartScripts(o, charts);
  o << "</body></html>\n";
}

void writeChartRow(std::ostream& o, const std::vector<ChartSpec>& charts, std::vector<ChartSpec>& all) {
  o << "<div class=\"charts\">";
  for (const ChartSpec& c : charts) {
    o << "<div class=\"chart\" id=\"chart-" << escapeHtml(c.name) << "\"></div>";
    all.push_back(c);
  }
  o << "</div>\n";
}

void writePageFile(const std::string& path, const std::string& html) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error(path + ": cannot write the page");
  out << html;
  if (!out.flush()) throw std::runtime_error(path + ": cannot write the page");
}

std::string singular(const std::string& unit) {
  return !unit.empty() && unit.back() == 's' ? unit.substr(0, unit.size() - 1) : unit;
}

std::string escapeHtml(const std::string& s) {
  std::string o;
  o.reserve(s.size());
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

std::string base64(std::string_view bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k)
      v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string jsonForScript(const std::string& json) {
  std::string o;
  o.reserve(json.size());
  for (char c : json) {
    if (c == '<') o += "\\u003c";
    else o += c;
  }
  return o;
}

void writeFacts(std::ostream& o, const std::vector<ReportFact>& facts) {
  o << "<table class=\"facts\">\n";
  for (const ReportFact& f : facts)
    o << "<tr><th>" << escapeHtml(f.name) << "</th><td>" << escapeHtml(f.value) << "</td></tr>\n";
  o << "</table>\n";
}

void writeClassificationTables(std::ostream& o, const Metrics& m, const std::vector<std::string>& classes) {
  o << "<table class=\"num\"><caption>Classification report</caption>\n<tr><th></th><th>precision</th>"
       "<th>recall</th><th>F1</th><th>support</th></tr>\n";
  auto row = [&](const std::string& name, const ClassMetrics& c) {
    o << "<tr><th>" << escapeHtml(name) << "</th><td>" << fmt(c.precision) << "</td><td>" << fmt(c.recall)
      << "</td><td>" << fmt(c.f1) << "</td><td>" << c.support << "</td></tr>\n";
  };
  for (size_t c = 0; c < m.perClass.size(); ++c)
    row(c < classes.size() ? classes[c] : std::to_string(c), m.perClass[c]);
  o << "<tr class=\"sep\"><th>accuracy</th><td></td><td></td><td>" << fmt(m.accuracy) << "</td><td>"
    << m.macro.support << "</td></tr>\n";
  row("macro avg", m.macro);
  row("weighted avg", m.weighted);
  o << "</table>\n";
  if (m.perClass.size() != 2) return;
  const std::string positive = classes.size() == 2 ? classes[1] : "class 1";
  o << "<table class=\"num\"><caption>Positive class: " << escapeHtml(positive) << "</caption>\n"
    << "<tr><th>TP</th><td>" << m.tp << "</td><th>TPR (sensitivity)</th><td>" << fmt(m.tpr) << "</td></tr>\n"
    << "<tr><th>FN</th><td>" << m.fn << "</td><th>FNR</th><td>" << fmt(m.fnr) << "</td></tr>\n"
    << "<tr><th>TN</th><td>" << m.tn << "</td><th>TNR (specificity)</th><td>" << fmt(m.tnr) << "</td></tr>\n"
    << "<tr><th>FP</th><td>" << m.fp << "</td><th>FPR</th><td>" << fmt(m.fpr) << "</td></tr>\n"
    << "<tr><th colspan=\"3\">Cohen's kappa (quadratic weights)</th><td>" << fmt(m.kappaQuadratic)
    << "</td></tr>\n</table>\n";
}

/// A link to `file` (relative to the report) showing its inline JPEG preview, or the file name when
/// there is no preview; nothing when there is no file.
void writeLinkedPreview(std::ostream& o, const std::string& file, const std::string& jpeg, const std::string& alt) {
  if (file.empty()) return;
  o << "<a href=\"" << escapeHtml(file) << "\">";
  if (!jpeg.empty())
    o << "<img src=\"data:image/jpeg;base64," << base64(jpeg) << "\" alt=\"" << escapeHtml(alt) << "\">";
  else
    o << escapeHtml(file);
  o << "</a>";
}

void writeRowTable(std::ostream& o, const std::vector<ReportRow>& rows, const std::string& unit) {
  o << "<table class=\"rows\"><tr><th>" << escapeHtml(singular(unit))
    << "</th><th>label</th><th>prediction</th><th>score</th><th>patches</th><th>note</th>"
       "<th>tissue (green: the mask patches were laid on)</th>"
       "<th>heatmap (blue 0 &rarr; red 1; click for the full image)</th></tr>\n";
  for (const ReportRow& r : rows) {
    const bool wrong = !r.label.empty() && std::isfinite(r.score) && r.label != r.prediction;
    o << "<tr" << (wrong ? " class=\"bad\"" : "") << "><td>" << escapeHtml(r.slideId);
    if (!r.viewer.empty()) o << " <a class=\"viewer\" href=\"" << escapeHtml(r.viewer) << "\">viewer</a>";
    o << "</td><td>"
      << escapeHtml(r.label) << "</td><td>" << escapeHtml(r.prediction) << "</td><td>" << fmt(r.score)
      << "</td><td>" << r.patches << "</td><td>" << escapeHtml(r.note) << "</td><td>";
    writeLinkedPreview(o, r.tissue, r.tissueJpeg, "tissue mask of " + r.slideId);
    o << "</td><td>";
    writeLinkedPreview(o, r.heatmap, r.heatmapJpeg, "heatmap of " + r.slideId);
    o << "</td></tr>\n";
  }
  o << "</table>\n";
}

void writeLicences(std::ostream& o) {
  o << "<details class=\"licences\"><summary>Licences of the JavaScript in this page (" << escapeHtml(vegaVersions())
    << ")</summary>\n";
  for (const char* name : {"LICENSE-vega", "LICENSE-vega-lite", "LICENSE-vega-embed", "THIRD_PARTY_NOTICES.txt"})
    o << "<h3>" << name << "</h3><pre>" << escapeHtml(std::string(embeddedVegaFile(name))) << "</pre>\n";
  o << "</details>\n";
}

void writeChartScripts(std::ostream& o, const std::vector<ChartSpec>& charts) {
  for (const std::string& name : vegaScriptNames()) {
    const std::string_view js = embeddedVegaFile(name);
    // "</script" inside would end the element early (tests/eval/EmbeddedVegaTest.cpp checks too).
    if (js.find("</script") != std::string_view::npos || js.find("</SCRIPT") != std::string_view::npos)
      throw std::logic_error("report: " + name + " holds \"</script\" and cannot be inlined");
    o << "<script data-library=\"" << name << "\">\n" << js << "\n</script>\n";
  }
  std::ostringstream specs;
  wsi::JsonWriter w(specs, wsi::JsonStyle::compact());
  w.beginObject();
  for (const ChartSpec& c : charts) w.key(c.name).rawValue(c.spec);
  w.endObject();
  o << "<script type=\"application/json\" id=\"report-chart-specs\">" << jsonForScript(specs.str())
    << "</script>\n<script>" << kLoader << "</script>\n";
}

}  // namespace slidetrain::report
