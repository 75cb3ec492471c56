// Compare: see Compare.h.
#include "src/cli/Compare.h"

#include <cstdio>
#include <filesystem>

#include "src/config/Errors.h"
#include "src/eval/Compare.h"
#include "src/eval/ComparePage.h"
#include "src/eval/ReportHtml.h"

namespace fs = std::filesystem;

namespace slidetrain {

std::string compareHelp() {
  std::string names;
  for (const std::string& m : compareMetricNames()) names += (names.empty() ? "" : ", ") + m;
  return "slidetrain compare [--out DIR] [--metric NAME] [LABEL=]RUN_DIR...\n"
         "Compares runs: each RUN_DIR is a run_dir of train (with or without predict), of cv (its\n"
         "folds, as one group: mean +- sd) or of mil (mil.folds too). LABEL names it (default: the\n"
         "folder's name); RUN_DIRs given the same LABEL form one group (e.g. seeds). Writes\n"
         "DIR/compare.html (final metrics, a boxplot of --metric over each group's runs, training\n"
         "curves; offline) and DIR/compare.csv (a row per run, then mean and sd rows per group).\n"
         "--out: default the current folder. --metric, default the first of patch_auc, oof_auc,\n"
         "val_auc, val_accuracy, predict_auc, predict_accuracy, train_accuracy that every group has;\n"
         "one of: " + names + ".\n"
         "  example: slidetrain compare --out study --metric patch_auc sgd=runs/sgd adam=runs/adam\n";
}

int runCompare(const std::vector<std::string>& args, const std::string& commandLine) {
  std::string out = ".", metric;
  std::vector<CompareInput> inputs;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      std::printf("%s", compareHelp().c_str());
      return 0;
    }
    if (a == "--out" || a == "--metric") {
      if (i + 1 >= args.size()) throw UsageError("compare: " + a + " expects a value\n" + compareHelp());
      (a == "--out" ? out : metric) = args[++i];
    } else if (a.rfind("--out=", 0) == 0) {
      out = a.substr(6);
    } else if (a.rfind("--metric=", 0) == 0) {
      metric = a.substr(9);
    } else if (a.rfind("-", 0) == 0) {
      throw UsageError("compare: unknown option '" + a + "'\n" + compareHelp());
    } else {
      inputs.push_back(parseCompareInput(a));
    }
  }
  if (inputs.empty()) throw UsageError("compare: no run folder given\n" + compareHelp());
  const std::vector<CompareGroup> groups = readComparison(inputs);
  if (metric.empty()) {
    metric = defaultCompareMetric(groups);
    if (metric.empty()) throw UsageError("compare: the runs have no metric to compare");
  }
  checkCompareMetric(groups, metric);
  fs::create_directories(out);
  const std::string csv = (fs::path(out) / "compare.csv").string();
  report::writePageFile(csv, compareCsv(groups));
  ComparePageOptions page;
  page.title = "slidetrain compare: " + metric;
  page.metric = metric;
  page.commandLine = commandLine;
  page.links = {{"compare.csv", "compare.csv"}};
  const std::string html = (fs::path(out) / "compare.html").string();
  writeComparePage(html, groups, page);
  std::printf("%s over each group's runs (mean ± sd, n):\n", metric.c_str());
  for (const CompareGroup& g : groups) {
    const MetricSummary s = summarizeMetric(g, metric);
    std::printf("  %-20s %-8s %s ± %s  n=%zu\n", g.label.c_str(), g.kind.c_str(),
                report::formatNumber(s.mean).c_str(), report::formatNumber(s.sd).c_str(), s.n);
    for (const std::string& n : g.notes) std::printf("    note: %s\n", n.c_str());
  }
  std::printf("wrote %s and %s\n", html.c_str(), csv.c_str());
  return 0;
}

}  // namespace slidetrain
