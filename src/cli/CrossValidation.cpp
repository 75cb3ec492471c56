#include "src/cli/CrossValidation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <ATen/Parallel.h>

#include "distributed/MpiComm.h"
#include "src/cli/Train.h"
#include "src/eval/Compare.h"
#include "src/eval/ComparePage.h"
#include "src/train/Checkpoint.h"
#include "src/runtime/Preemption.h"
#include "src/eval/Evaluate.h"
#include "src/eval/Metrics.h"
#include "src/runtime/Runtime.h"
#include "src/data/ClassOrder.h"
#include "src/data/Folds.h"
#include "src/data/StreamOptions.h"
#include "src/train/Trainer.h"
#include "wsi/JsonWriter.h"

namespace fs = std::filesystem;

namespace slidetrain {

namespace {

const std::vector<std::string>& kColumns = cvSummaryColumns();

std::vector<double> foldRow(const EvalResult& r) {
  auto auc = [](double v) { return v < 0 ? NAN : v; };
  const double positiveF1 = r.patch.perClass.empty() ? NAN : r.patch.perClass.back().f1;
  std::vector<double> row{r.patch.accuracy, auc(r.patch.rocAuc), r.patch.macro.f1, r.patch.kappaQuadratic,
                          r.loss, r.slide.accuracy, auc(r.slide.rocAuc), r.slide.macro.f1, positiveF1,
                          r.patch.tpr, r.patch.tnr, r.patch.fpr, r.patch.fnr};
  if (row.size() != kColumns.size()) throw std::logic_error("cv summary: a value per column");
  return row;
}

std::string num(double v) { return wsi::jsonNumber(v, 6); }

void writeSummary(const std::string& runDir, const std::vector<std::vector<double>>& rows) {
  std::ofstream csv(fs::path(runDir) / "cv_summary.csv");
  csv << "fold";
  for (const auto& c : kColumns) csv << "," << c;
  csv << "\n";
  for (size_t f = 0; f < rows.size(); ++f) {
    csv << f;
    for (double v : rows[f]) csv << "," << (std::isfinite(v) ? num(v) : "");
    csv << "\n";
  }
  wsi::JsonStyle style;
  style.significantDigits = 6;
  std::ofstream out(fs::path(runDir) / "cv_summary.json");
  wsi::JsonWriter json(out, style);
  json.beginObject().key("folds").beginArray();
  for (size_t f = 0; f < rows.size(); ++f) {
    json.beginObject().key("fold").value(f);
    for (size_t c = 0; c < kColumns.size(); ++c) json.key(kColumns[c]).value(rows[f][c]);
    json.endObject();
  }
  json.endArray();
  std::printf("cross-validation (%zu folds): mean ± sd\n", rows.size());
  std::vector<double> means, sds;
  for (size_t c = 0; c < kColumns.size(); ++c) {
    std::vector<double> col;
    for (const auto& r : rows) col.push_back(r[c]);
    const auto [m, sd] = meanSd(col);
    means.push_back(m);
    sds.push_back(sd);
    std::printf("  %-16s %.4f ± %.4f\n", kColumns[c].c_str(), m, sd);
  }
  json.key("mean").beginObject();
  for (size_t c = 0; c < kColumns.size(); ++c) json.key(kColumns[c]).value(means[c]);
  json.endObject().key("sd").beginObject();
  for (size_t c = 0; c < kColumns.size(); ++c) json.key(kColumns[c]).value(sds[c]);
  json.endObject().endObject();
  out << "\n";
  std::printf("wrote %s and %s\n", (fs::path(runDir) / "cv_summary.csv").c_str(),
              (fs::path(runDir) / "cv_summary.json").c_str());
}

}  // namespace

int runCrossValidation(const Settings& cfg, const std::string& commandLine) {
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const bool lead = planes.rank() == 0;
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data);
  if (lead) std::printf("%s\n", classOrderLine(cohort).c_str());
  const int k = cfg.cv.folds;
  const std::vector<int> fold = assignFolds(cohort, k, cfg.run.seed, "cv.folds");
  const std::string runDir = cfg.run.runDir;
  std::vector<std::vector<double>> rows;
  for (int f = 0; f < k; ++f) {
    wsi::Cohort c = cohort;
    for (size_t i = 0; i < c.slides.size(); ++i)
      if (fold[i] >= 0) c.slides[i].split = fold[i] == f ? "val" : "train";
    const std::string foldDir = (fs::path(runDir) / ("fold_" + std::to_string(f))).string();
    const Settings fc = cfg.withClasses(cohort.classes).with({"run_dir=" + foldDir});
    if (lead) std::printf("== fold %d/%d\n", f + 1, k);
    SplitData train = prepareSplit(fc.tiling, c, "train", *planes.host);
    SplitData val = prepareSplit(fc.tiling, c, "val", *planes.host);
    if (train.samples.empty() || val.samples.empty())
      throw std::runtime_error("cv fold " + std::to_string(f) + ": empty train or validation split");
    TrainReportInput in = trainReportInput(
        "slidetrain cv: fold " + std::to_string(f) + " of " + std::to_string(k) + " (" + runDir + ")", commandLine,
        std::time(nullptr), planes, cohort.classes, train, &val);
    const auto foldStart = std::chrono::steady_clock::now();
    Trainer trainer(fc, planes, std::move(train), val, cohort.classes);
    const TrainResult trained = trainer.run();
    if (trained.preempted) return kExitPreempted;  // resumes at this fold's last.pt
    if (lead) {  // the fold's own report.html, as train writes (the last epoch's validation)
      in.val = &val;
      in.wallSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - foldStart).count();
      writeTrainReport(fc, trained, in);
    }
    // (run() ends with a barrier: checkpoints are on disk)
    const std::string best = (fs::path(foldDir) / "checkpoints" / "best.pt").string();
    if (cfg.cv.checkpoint == "best" && fs::exists(best)) loadCheckpoint(best, trainer.model(), nullptr);
    const EvalResult r = evaluateSplit(trainer.model(), val, static_cast<int>(cohort.classes.size()),
                                       inferenceOptions(cfg.predict, rankStreamOptions(cfg, planes.modelDevice.is_cuda()),
                                                        normalization(cfg.data), cfg.augment),
                                       slidePooling(cfg.predict), *planes.device);
    rows.push_back(foldRow(r));
    if (lead)
      std::printf("fold %d: patch accuracy %.4f  patch AUC %s  slide accuracy %.4f (%lld slides)\n", f + 1,
                  r.patch.accuracy, num(rows.back()[1]).c_str(), r.slide.accuracy,
                  static_cast<long long>(r.slide.confusion.total()));
  }
  if (lead) {
    writeSummary(runDir, rows);
    // report.html: compare's page over the folds (src/eval/ComparePage.h), read back from the
    // files just written, so that it shows what `slidetrain compare` would.
    const std::vector<CompareGroup> groups{readCompareGroup(fs::path(runDir).lexically_normal().filename().string(), runDir)};
    ComparePageOptions page;
    page.title = "slidetrain cv: " + std::to_string(k) + " folds of " + cfg.run.cohort;
    page.metric = defaultCompareMetric(groups);
    page.commandLine = commandLine;
    page.links = {{"cv_summary.csv", "cv_summary.csv"}, {"cv_summary.json", "cv_summary.json"}};
    writeComparePage((fs::path(runDir) / "report.html").string(), groups, page);
    std::printf("wrote %s\n", (fs::path(runDir) / "report.html").c_str());
  }
  planes.host->barrier();
  return 0;
}

}  // namespace slidetrain
