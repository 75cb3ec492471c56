// Train: see Train.h.
#include "src/cli/Train.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "src/cli/Cli.h"
#include "src/data/ClassOrder.h"
#include "src/eval/Report.h"
#include "src/eval/ReportHtml.h"
#include "src/runtime/Preemption.h"
#include "src/runtime/Runtime.h"

namespace fs = std::filesystem;

namespace slidetrain {

void writeTrainReport(const Settings& cfg, const TrainResult& result, const TrainReportInput& in) {
  const fs::path runDir = cfg.run.runDir;
  if (!result.val && result.train.confusion.total() == 0 && fs::exists(runDir / "report.html")) {
    // Nothing trained in this process (a resume found the run finished): the report stays.
    std::printf("kept %s (nothing was trained now)\n", (runDir / "report.html").c_str());
    return;
  }
  ReportContent report;
  report.title = in.title;
  report.classes = in.classes;
  report.unit = "patches";
  if (result.val) {
    report.summaryText = "validation, patches (last epoch):\n" + result.val->patch.report(in.classes) +
                         "\nvalidation, slides (last epoch, pooled patch probabilities):\n" +
                         result.val->slide.report(in.classes);
    report.metrics = result.val->patch;
    report.metricsCaption = "The val split's patches at the end of the last epoch (predict scores slides).";
    if (in.classes.size() == 2 && in.val && result.val->probabilities.defined()) {
      ScoredSet set = patchScores(*in.val, result.val->probabilities);
      set.name = "val patches";
      report.slideCurves.push_back(std::move(set));
    }
  } else {
    report.summaryText = "training, patches (last epoch; no val split):\n" + result.train.report(in.classes);
    report.metrics = result.train;
    report.metricsCaption = "No val split: the train split's patches as seen in the last epoch (augmented).";
  }
  report.hasMetrics = report.metrics.confusion.total() > 0;
  report.training = readTrainingLog((runDir / "metrics.jsonl").string());
  report.qc = in.skipped;
  for (const auto& n : report.training.notes) report.qc.push_back(n);
  report.qcNone = "Every slide of the train and val splits was tiled; nothing to report.";
  char best[160];
  std::snprintf(best, sizeof best, "%s %s at epoch %lld", result.monitor.c_str(),
                report::formatNumber(result.bestMetric).c_str(), static_cast<long long>(result.bestEpoch));
  report.run = {
      {"command", in.commandLine.empty() ? "slidetrain train" : in.commandLine},
      {"started", report::localTime(in.started)},
      {"wall time", report::duration(in.wallSeconds) + " (up to this report)"},
      {"ranks", std::to_string(in.ranks)},
      {"device", in.device},
      {"run_dir", runDir.string()},
      {"trained", std::to_string(result.epochs) + " epochs, " + std::to_string(result.steps) + " optimizer steps" +
                      (result.stoppedEarly ? " (stopped early)" : "")},
      {"best", best},
      {"train split", std::to_string(in.trainSlides) + " slides, " + std::to_string(in.trainPatches) + " patches"},
      {"val split", in.val ? std::to_string(in.val->slideIds.size()) + " slides, " +
                                 std::to_string(in.val->samples.size()) + " patches"
                           : "none"},
      {"checkpoints", (runDir / "checkpoints").string()},
      {"versions", versionText()},
  };
  report.configs.push_back({"settings (resolved)", cfg.yaml()});
  writeReportHtml((runDir / "report.html").string(), report);
  std::printf("wrote %s\n", (runDir / "report.html").c_str());
}

TrainReportInput trainReportInput(const std::string& title, const std::string& commandLine, std::time_t started,
                                  const dist::Planes& planes, const std::vector<std::string>& classes,
                                  const SplitData& train, const SplitData* val) {
  TrainReportInput in;
  in.title = title;
  in.commandLine = commandLine;
  in.started = started;
  in.ranks = planes.size();
  in.device = planes.modelDevice.str();
  in.classes = classes;
  in.trainSlides = train.slideIds.size();
  in.trainPatches = train.samples.size();
  for (const auto& s : train.skipped) in.skipped.push_back("train slide left out (could not be tiled): " + s);
  if (val)
    for (const auto& s : val->skipped) in.skipped.push_back("val slide left out (could not be tiled): " + s);
  return in;
}

int runTrain(const Settings& cfg, const std::string& commandLine) {
  const auto clock = std::chrono::steady_clock::now();
  const std::time_t started = std::time(nullptr);
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data);
  if (planes.rank() == 0) std::printf("%s\n", classOrderLine(cohort).c_str());
  SplitData train = prepareSplit(cfg.tiling, cohort, "train", *planes.host);
  if (train.samples.empty()) throw std::runtime_error(cfg.run.cohort + ": the train split has no patches");
  std::optional<SplitData> val;
  if (!cohort.indicesOfSplit("val").empty()) val = prepareSplit(cfg.tiling, cohort, "val", *planes.host);
  TrainReportInput in = trainReportInput("slidetrain train: " + cfg.run.runDir, commandLine, started, planes,
                                         cohort.classes, train, val ? &*val : nullptr);
  Trainer trainer(cfg.withClasses(cohort.classes), planes, std::move(train), val, cohort.classes);
  const TrainResult result = trainer.run();
  if (result.preempted) return kExitPreempted;
  if (planes.rank() == 0) {
    in.val = val ? &*val : nullptr;
    in.wallSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - clock).count();
    writeTrainReport(cfg.withClasses(cohort.classes), result, in);
  }
  return 0;
}

}  // namespace slidetrain
