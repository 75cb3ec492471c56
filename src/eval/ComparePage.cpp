// ComparePage: see ComparePage.h.
#include "src/eval/ComparePage.h"

#include <cmath>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "src/eval/CompareCharts.h"
#include "src/eval/EmbeddedVega.h"
#include "src/eval/ReportHtml.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

using report::escapeHtml;

/// Counts and seconds with one decimal, the rest (accuracies, AUCs, losses) with four.
const char* formatOf(const std::string& metric) {
  return metric == "epochs" || metric == "steps" || metric == "train_seconds" ? "%.1f" : "%.4f";
}

std::string th(const std::string& text, bool chosen) {
  return std::string(chosen ? "<th class=\"chosen\">" : "<th>") + escapeHtml(text) + "</th>";
}

void summaryTable(std::ostream& o, const std::vector<CompareGroup>& groups, const std::vector<std::string>& metrics,
                  const std::string& chosen) {
  o << "<h2 id=\"summary\">Final metrics (mean &plusmn; sd over each group's runs)</h2>\n"
       "<table class=\"num\"><tr><th>group</th><th>kind</th><th>runs</th>";
  for (const std::string& m : metrics) o << th(m, m == chosen);
  o << "</tr>\n";
  for (const CompareGroup& g : groups) {
    o << "<tr><th>" << escapeHtml(g.label) << "</th><td>" << escapeHtml(g.kind) << "</td><td>" << g.runs.size()
      << "</td>";
    for (const std::string& m : metrics) {
      const MetricSummary s = summarizeMetric(g, m);
      o << (m == chosen ? "<td class=\"chosen\">" : "<td>");
      if (s.n > 0) {
        o << report::formatNumber(s.mean, formatOf(m));
        if (g.runs.size() > 1) o << " &plusmn; " << report::formatNumber(s.sd, formatOf(m));
        if (s.n < g.runs.size()) o << " (n=" << s.n << ")";
      }
      o << "</td>";
    }
    o << "</tr>\n";
  }
  o << "</table>\n<p class=\"note\">sd: sample standard deviation (n &minus; 1) over the group's runs (folds, "
       "seeds); a run without the metric is left out (n says how many have it). Metric names: docs/compare.md.</p>\n";
}

void runsTable(std::ostream& o, const std::vector<CompareGroup>& groups, const std::vector<std::string>& metrics,
               const std::string& chosen, const fs::path& pageDir) {
  o << "<h2 id=\"runs\">Runs</h2>\n<table class=\"num\"><tr><th>group</th><th>run</th>";
  for (const std::string& m : metrics) o << th(m, m == chosen);
  o << "<th>report</th></tr>\n";
  for (const CompareGroup& g : groups)
    for (const CompareRun& r : g.runs) {
      o << "<tr><th>" << escapeHtml(g.label) << "</th><th>" << escapeHtml(r.name) << "</th>";
      for (const std::string& m : metrics)
        o << (m == chosen ? "<td class=\"chosen\">" : "<td>") << report::formatNumber(r.metric(m), formatOf(m))
          << "</td>";
      o << "<td>";
      if (!r.report.empty()) {
        std::error_code ec;
        fs::path rel = fs::relative(fs::absolute(r.report), fs::absolute(pageDir), ec);
        if (ec || rel.empty()) rel = fs::absolute(r.report);
        o << "<a href=\"" << escapeHtml(rel.generic_string()) << "\">report.html</a>";
      }
      o << "</td></tr>\n";
    }
  o << "</table>\n";
}

}  // namespace

void writeComparePage(const std::string& path, const std::vector<CompareGroup>& groups,
                      const ComparePageOptions& options) {
  const std::vector<std::string> metrics = presentMetrics(groups);
  std::vector<ChartSpec> curves;
  for (const auto& [name, which] : {std::pair{"curves_loss", CompareCurve::Loss},
                                    std::pair{"curves_accuracy", CompareCurve::Accuracy},
                                    std::pair{"curves_auc", CompareCurve::Auc}}) {
    ChartSpec c = compareCurveChart(name, groups, which);
    if (!c.spec.empty()) curves.push_back(std::move(c));
  }
  std::ostringstream o;
  std::vector<ChartSpec> charts;
  bool notes = false;
  for (const CompareGroup& g : groups) notes = notes || !g.notes.empty();
  std::vector<std::pair<std::string, std::string>> nav{{"summary", "final metrics"}, {"boxplot", "boxplot"}};
  if (!curves.empty()) nav.emplace_back("curves", "training curves");
  nav.emplace_back("runs", "runs");
  if (notes) nav.emplace_back("notes", "notes");
  nav.emplace_back("about", "about");
  report::writePageStart(o, options.title, nav);
  size_t runs = 0;
  for (const CompareGroup& g : groups) runs += g.runs.size();
  o << "<p>" << groups.size() << " group" << (groups.size() == 1 ? "" : "s") << ", " << runs << " run"
    << (runs == 1 ? "" : "s") << ".";
  for (const auto& [text, href] : options.links)
    o << " <a href=\"" << escapeHtml(href) << "\">" << escapeHtml(text) << "</a>";
  o << "</p>\n";
  summaryTable(o, groups, metrics, options.metric);
  o << "<h2 id=\"boxplot\">" << escapeHtml(options.metric) << " over each group's runs</h2>\n";
  report::writeChartRow(o, {compareBoxplot("boxplot", groups, options.metric)}, charts);
  if (!curves.empty()) {
    o << "<h2 id=\"curves\">Training curves</h2>\n<p class=\"note\">One colour per group, one line per run; "
         "solid: train (epoch mean), dashed: validation at the epoch's end.</p>\n";
    report::writeChartRow(o, curves, charts);
  }
  runsTable(o, groups, metrics, options.metric, fs::path(path).parent_path());
  if (notes) {
    o << "<h2 id=\"notes\">Notes</h2>\n<ul>\n";
    for (const CompareGroup& g : groups)
      for (const std::string& n : g.notes) o << "<li>" << escapeHtml(g.label + ": " + n) << "</li>\n";
    o << "</ul>\n";
  }
  o << "<h2 id=\"about\">About</h2>\n";
  std::vector<ReportFact> facts;
  if (!options.commandLine.empty()) facts.push_back({"command", options.commandLine});
  facts.push_back({"written", report::localTime(std::time(nullptr))});
  for (const CompareGroup& g : groups) {
    std::string dirs;
    for (const std::string& d : g.dirs) dirs += (dirs.empty() ? "" : "\n") + d;
    facts.push_back({g.label, g.kind + ": " + dirs});
  }
  report::writeFacts(o, facts);
  report::writePageEnd(o, charts);
  report::writePageFile(path, o.str());
}

}  // namespace slidetrain
