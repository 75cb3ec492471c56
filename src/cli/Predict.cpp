#include "src/cli/Predict.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "distributed/MpiComm.h"
#include "src/cli/Cli.h"
#include "src/eval/Aggregate.h"
#include "src/eval/Exports.h"
#include "src/eval/SlideDecisions.h"
#include "src/eval/SlideViewer.h"
#include "src/models/StateDict.h"
#include "src/train/Checkpoint.h"
#include "src/eval/Inference.h"
#include "src/eval/Metrics.h"
#include "src/eval/Report.h"
#include "src/eval/ReportHtml.h"
#include "src/runtime/Runtime.h"
#include "src/data/ClassOrder.h"
#include "src/data/StreamOptions.h"
#include "src/data/Tiling.h"
#include "wsi/ImageIo.h"
#include "src/train/Loss.h"
#include "src/train/Trainer.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

constexpr int kAucBootstrapReps = 1000;

// Why predict.threshold_from: val cannot apply, from the cohort and the settings alone (every
// rank decides the same, so all of them predict the val split or none does); "" when it can.
std::string valThresholdUnavailable(const Settings& cfg, const wsi::Cohort& cohort, int numClasses) {
  if (cfg.predict.thresholdFrom != "val") return "";
  if (numClasses != 2) return "the task has " + std::to_string(numClasses) + " classes";
  if (cohort.indicesOfSplit("val").empty()) return "the cohort has no val split";
  return "";
}

// patches.csv: one row per patch with its class probabilities (empty cells: a skipped patch).
void writePatchesCsv(const std::string& path, const wsi::Cohort& cohort, const SplitData& data,
                     const at::Tensor& probs) {
  const int numClasses = static_cast<int>(cohort.classes.size());
  std::ofstream pcsv(path);
  pcsv << "slide_id,x,y,level,size,label";
  for (const auto& c : cohort.classes) pcsv << ",p_" << c;
  pcsv << "\n";
  const at::Tensor probsC = probs.contiguous();
  const float* prob = probsC.data_ptr<float>();
  for (size_t i = 0; i < data.samples.size(); ++i) {
    const auto& r = data.samples[i];
    pcsv << data.slideIds[r.slide] << "," << r.x << "," << r.y << "," << r.level << "," << r.size
         << ",";
    if (r.label >= 0) pcsv << r.label;  // unlabelled slide: empty
    const bool skipped = std::isnan(prob[i * static_cast<size_t>(numClasses)]);
    for (int c = 0; c < numClasses; ++c) {
      pcsv << ",";
      if (!skipped) pcsv << prob[i * static_cast<size_t>(numClasses) + c];
    }
    pcsv << "\n";
  }
}

using report::duration;
using report::localTime;

std::string thresholdLine(const std::string& unit, const std::string& method, const SlideThreshold& t,
                          size_t valSlides) {
  char line[200];
  std::snprintf(line, sizeof line, "%s threshold (%s pooling): %.4f (%s)", unit.c_str(), method.c_str(), t.value,
                t.from == "val" ? ("Youden's J on " + std::to_string(valSlides) + " val " + unit + "s").c_str()
                                : "fixed predict.threshold");
  return line;
}

}  // namespace

int runPredict(const Settings& cfg, const std::string& commandLine) {
  const auto started = std::chrono::steady_clock::now();
  const std::time_t startedAt = std::time(nullptr);
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const bool lead = planes.rank() == 0;
  const std::string runDir = cfg.run.runDir;
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data, /*forPrediction=*/true);  // labels optional
  if (lead) std::printf("%s\n", classOrderLine(cohort).c_str());
  const int numClasses = static_cast<int>(cohort.classes.size());
  const std::string split = cfg.predict.split;
  // Patch folders: each image is a unit with one patch (its "slide" pooling is its own
  // probability), so the slide-level metrics below are the image-level ones; no heatmaps or
  // exports, which need a slide to draw on.
  const bool images = cohort.imageFiles;
  const std::string unit = images ? "image" : "slide";
  if (cohort.indicesOfSplit(split).empty())
    throw ConfigError("predict.split: no " + unit + " of " + (images ? cfg.data.patchFolders : cfg.run.cohort) +
                      " is in split '" + split + "'");
  const std::string noVal = valThresholdUnavailable(cfg, cohort, numClasses);
  const bool predictVal = cfg.predict.thresholdFrom == "val" && noVal.empty();
  // Collectives in the same order on every rank: prepareSplit, then predictProbabilities, the
  // predicted split before the val split.
  SplitData data = prepareSplit(cfg.tiling, cohort, split, *planes.host);
  SplitData valData;
  if (predictVal) valData = prepareSplit(cfg.tiling, cohort, "val", *planes.host);

  auto model = buildModel(modelOptions(cfg.model, modelOutputs(lossOptions(cfg.train), numClasses),
                                       cfg.tiling.index.size));
  std::string ckpt = cfg.predict.checkpoint;
  if (ckpt.empty()) ckpt = (fs::path(runDir) / "checkpoints" / "last.pt").string();
  model->to(planes.modelDevice);  // the device rule of training (src/runtime/Runtime.h)
  loadCheckpoint(ckpt, *model, nullptr);

  const InferenceOptions io =
      inferenceOptions(cfg.predict, rankStreamOptions(cfg, planes.modelDevice.is_cuda()),
                       normalization(cfg.data), cfg.augment);
  const auto inferenceStart = std::chrono::steady_clock::now();
  const at::Tensor probs = predictProbabilities(*model, data, numClasses, io, *planes.device);
  const double inferenceSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - inferenceStart).count();
  at::Tensor valProbs;
  if (predictVal) valProbs = predictProbabilities(*model, valData, numClasses, io, *planes.device);
  if (!lead) return 0;

  const SlidePooling pooling = slidePooling(cfg.predict);
  const std::string& method = pooling.method;
  const std::vector<std::string>& methods = poolingMethods();
  std::map<std::string, SlideThreshold> thresholds = fixedThresholds(pooling, numClasses);
  size_t valSlides = 0;
  if (!noVal.empty() && numClasses != 2) {
    std::printf("predict.threshold_from: val, but %s: each slide takes the class with the highest "
                "pooled score (no threshold)\n", noVal.c_str());
  } else if (!noVal.empty()) {
    std::printf("predict.threshold_from: val, but %s: using the fixed predict.threshold %g\n",
                noVal.c_str(), pooling.threshold);
  } else if (predictVal) {
    std::string why;
    const SlideProbabilities valPerSlide = slideProbabilities(valData, valProbs, numClasses);
    thresholds = valThresholds(valPerSlide, valData.slideLabels, pooling, &why);
    if (why.empty()) {
      for (size_t s = 0; s < valData.paths.size(); ++s)
        valSlides += valData.slideLabels[s] >= 0 && !valPerSlide[s][0].empty();
      if (split == "val" || split == "all")
        std::printf("note: predict.split %s holds the val slides the thresholds were chosen on: its "
                    "metrics are optimistic\n", split.c_str());
    } else {
      std::printf("predict.threshold_from: val, but %s: using the fixed predict.threshold %g\n",
                  why.c_str(), pooling.threshold);
    }
  }
  if (numClasses == 2)
    for (const auto& m : methods)
      std::printf("%s\n", thresholdLine(unit, m, thresholds.at(m), valSlides).c_str());

  fs::create_directories(runDir);
  writePatchesCsv((fs::path(runDir) / "patches.csv").string(), cohort, data, probs);
  const SlideProbabilities perSlide = slideProbabilities(data, probs, numClasses);
  std::vector<int64_t> indexed(data.paths.size(), 0);
  for (const auto& r : data.samples) ++indexed[r.slide];

  std::ofstream scsv(fs::path(runDir) / "slides.csv");
  scsv << "slide_id,label,patches";
  for (const auto& m : methods) scsv << ",score_" << m << ",pred_" << m;
  scsv << ",note\n";
  // Slides without a usable patch get no score: they are listed with the reason, left out of
  // the metrics (a NaN score would poison the AUC's sort) and counted in the summary.
  std::vector<std::string> unscored;
  std::vector<MethodSlides> results;
  for (const auto& m : methods) {
    results.emplace_back();
    results.back().method = m;
    results.back().threshold = thresholds.at(m);
    results.back().confusion = ConfusionMatrix(numClasses);
  }
  std::vector<ReportRow> rows(data.paths.size());
  size_t unlabelled = 0;
  for (size_t s = 0; s < data.paths.size(); ++s) {
    const int label = data.slideLabels[s];  // -1: a slide nobody has labelled
    unlabelled += label < 0;
    rows[s].slideId = data.slideIds[s];
    rows[s].label = label >= 0 ? cohort.classes[label] : "";
    rows[s].patches = perSlide[s][0].size();
    scsv << data.slideIds[s] << "," << rows[s].label << "," << perSlide[s][0].size();
    if (perSlide[s][0].empty()) {
      const std::string why =
          indexed[s] == 0 ? "no patches in the index (no tissue at this threshold, or an empty region)"
                          : "all " + std::to_string(indexed[s]) + " patches were unreadable and skipped";
      for (size_t k = 0; k < methods.size(); ++k) scsv << ",,";
      scsv << "," << why << "\n";
      rows[s].prediction = "(no patches)";
      rows[s].score = std::nan("");
      rows[s].note = why;
      unscored.push_back(data.slideIds[s] + ": " + why);
      continue;
    }
    for (auto& r : results) {
      SlidePooling withMethod = pooling;
      withMethod.method = r.method;
      withMethod.threshold = r.threshold.value;
      double score = 0;
      const int pred = decideSlide(perSlide[s], withMethod, &score);
      // Metrics over labelled slides only.
      if (label >= 0) r.confusion.add(label, pred), r.labels.push_back(label), r.scores.push_back(score);
      scsv << "," << score << "," << cohort.classes[pred];
      if (r.method == method) rows[s].prediction = cohort.classes[pred], rows[s].score = score;
    }
    scsv << ",\n";
  }
  for (auto& r : results) r.finish(kAucBootstrapReps, cfg.run.seed);
  const MethodSlides& best = results[static_cast<size_t>(
      std::find(methods.begin(), methods.end(), method) - methods.begin())];
  const size_t scored = best.labels.size();  // labelled slides with a score: what the metrics cover
  if (!unscored.empty()) {
    std::printf("%zu of %zu slides have no usable patch and are left out of the metrics:\n",
                unscored.size(), data.paths.size());
    for (const auto& u : unscored) std::printf("  %s\n", u.c_str());
  }
  if (unlabelled > 0)
    std::printf("%zu of %zu slides have no label: their predictions are in slides.csv; the "
                "metrics cover the %zu labelled slide%s with a score\n", unlabelled,
                data.paths.size(), scored, scored == 1 ? "" : "s");
  const Metrics chosen =
      Metrics::compute(best.confusion, best.labels, numClasses == 2 ? best.scores : std::vector<double>{});
  std::string summary;
  if (scored == 0) {
    summary = "no slide with a label and a score: no metrics\n";
    std::printf("%s", summary.c_str());
  } else {
    for (const auto& r : results)
      std::printf("%s-level accuracy (%s pooling): %.4f\n", unit.c_str(), r.method.c_str(), r.accuracy);
    std::printf("%s", chosen.report(cohort.classes).c_str());
    std::printf("held-out %s-level accuracy (%s pooling, %zu %ss): %.4f\n", unit.c_str(), method.c_str(),
                scored, unit.c_str(), chosen.accuracy);
    summary = chosen.report(cohort.classes) + "\n" + unit + "-level accuracy (" + method + " pooling): " +
              std::to_string(chosen.accuracy) + "\n";
    if (numClasses == 2) {
      char line[200];
      if (best.auc.reps > 0)
        std::snprintf(line, sizeof line, "held-out %s AUC (%s pooling): %.2f [%.2f, %.2f] (95 %% bootstrap CI, %d resamples)\n",
                      unit.c_str(), method.c_str(), best.auc.auc, best.auc.lo, best.auc.hi, best.auc.reps);
      else
        std::snprintf(line, sizeof line, "held-out %s AUC (%s pooling): undefined (the scored %ss hold one class)\n",
                      unit.c_str(), method.c_str(), unit.c_str());
      std::printf("%s", line);
      summary += line;
    }
  }
  writeThresholdsJson((fs::path(runDir) / "thresholds.json").string(), thresholds, valSlides);
  writeSlideMetricsJson((fs::path(runDir) / "slide_metrics.json").string(), results, method, split);
  if (images && (cfg.predict.heatmaps || cfg.predict.exports || cfg.predict.viewer))
    std::printf("patch folders: no heatmaps, exports or viewer (each image is its own unit)\n");
  if (cfg.predict.heatmaps && !images) {
    // Heatmap of P(not class 0): the positive class's probability for binary tasks.
    const at::Tensor probsC = probs.contiguous();
    const float* prob = probsC.data_ptr<float>();
    fs::create_directories(fs::path(runDir) / "heatmaps");
    std::vector<std::vector<wsi::PatchRequest>> patchesOf(data.paths.size());
    std::vector<std::vector<double>> probOf(data.paths.size());
    for (size_t i = 0; i < data.samples.size(); ++i) {
      const auto& r = data.samples[i];
      patchesOf[r.slide].push_back(r);
      probOf[r.slide].push_back(1.0 - prob[i * static_cast<size_t>(numClasses)]);
    }
    // The tissue mask beside each heatmap (the QC picture `slidetrain tile` writes to qc/).
    fs::create_directories(fs::path(runDir) / "qc");
    for (size_t s = 0; s < data.paths.size(); ++s) {
      const auto entry = std::find_if(cohort.slides.begin(), cohort.slides.end(),
                                      [&](const wsi::CohortEntry& e) { return e.slideId == data.slideIds[s]; });
      if (entry != cohort.slides.end()) {
        const wsi::RgbImage qc = tissueQcImage(*entry, cfg.tiling);
        rows[s].tissue = "qc/" + data.slideIds[s] + "_tissue.png";
        wsi::writePng(qc, (fs::path(runDir) / rows[s].tissue).string(), "tissue QC picture");
        rows[s].tissueJpeg = heatmapPreview(qc, 240);
      }
    }
    for (size_t s = 0; s < data.paths.size(); ++s) {
      rows[s].heatmap = "heatmaps/" + data.slideIds[s] + ".png";
      rows[s].heatmapJpeg = heatmapPreview(writeHeatmap(data.paths[s], data.slideOptions[s], patchesOf[s],
                                                        probOf[s], (fs::path(runDir) / rows[s].heatmap).string(),
                                                        cfg.predict.heatmapSize));
    }
  }
  if (cfg.predict.exports && !images) {
    // QuPath GeoJSON and heatmap TIFFs (src/eval/Exports.h); timed, as the cost decides the default.
    const auto start = std::chrono::steady_clock::now();
    const std::string dir = (fs::path(runDir) / "exports").string();
    const int files = writeSlideExports(data, probs.contiguous().data_ptr<float>(), cohort.classes,
                                        cfg.tiling.index.stride, dir);
    std::printf("wrote %d exports of %zu slides to %s in %.2f s\n", files, data.paths.size(), dir.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  if (cfg.predict.viewer && !images) {
    // Deep-zoom tiles and a page per slide (src/eval/SlideViewer.h); timed, as the cost is why
    // it is off by default.
    const auto start = std::chrono::steady_clock::now();
    const std::string dir = (fs::path(runDir) / "viewer").string();
    const std::vector<SlidePredictions> preds =
        slidePredictions(data, probs.contiguous().data_ptr<float>(), cohort.classes, cfg.tiling.index.stride);
    for (size_t s = 0; s < data.paths.size(); ++s) {
      ViewerSlide v{data.slideIds[s], data.paths[s], data.slideOptions[s], {}};
      if (!rows[s].label.empty()) v.facts.push_back({"label", rows[s].label});
      v.facts.push_back({"prediction", rows[s].prediction});
      if (std::isfinite(rows[s].score)) {
        char score[32];
        std::snprintf(score, sizeof score, "%.4f (%s pooling)", rows[s].score, method.c_str());
        v.facts.push_back({"score", score});
      }
      rows[s].viewer = "viewer/" + writeSlideViewer(dir, v, preds[s], cfg.predict.viewerMaxSide, "../report.html");
    }
    std::printf("wrote slide viewers of %zu slides to %s in %.2f s\n", data.paths.size(), dir.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  ReportContent report;
  report.title = "slidetrain: " + split + " split of " + (images ? cfg.data.patchFolders + " (patch folders)" : cfg.run.cohort);
  report.summaryText = summary;
  report.classes = cohort.classes;
  report.rows = std::move(rows);
  report.hasMetrics = scored > 0;
  report.metrics = chosen;
  report.metricsCaption = images ? "Images (patch folders; one patch each) called by their probability"
                                 : "Slides called by " + method + " pooling";
  if (numClasses == 2) {
    char at[64];
    std::snprintf(at, sizeof at, " at the threshold %.4f (", best.threshold.value);
    report.metricsCaption += at + (best.threshold.from == "val" ? "Youden's J on " + std::to_string(valSlides) +
                                                                     " val slides)"
                                                               : std::string("fixed predict.threshold)"));
  } else {
    report.metricsCaption += " (each slide takes the class with the highest pooled score)";
  }
  if (numClasses == 2) {
    for (const auto& r : results) {  // the chosen method first
      ScoredSet set{r.method + " pooling" + (r.method == method ? " (chosen)" : ""), r.labels, r.scores, r.auc};
      report.slideCurves.insert(r.method == method ? report.slideCurves.begin() : report.slideCurves.end(), set);
    }
    report.patchCurves.push_back(patchScores(data, probs));
  }
  report.training = readTrainingLog((fs::path(runDir) / "metrics.jsonl").string());
  for (const auto& s : data.skipped) report.qc.push_back("left out (could not be tiled): " + s);
  for (const auto& s : valData.skipped) report.qc.push_back("val slide left out (could not be tiled): " + s);
  for (const auto& u : unscored) report.qc.push_back("no score: " + u);
  if (unlabelled > 0)
    report.qc.push_back(std::to_string(unlabelled) + " of " + std::to_string(data.paths.size()) +
                        " slides have no label: they are predicted but not in the metrics");
  for (const auto& n : report.training.notes) report.qc.push_back(n);
  size_t readPatches = 0;
  for (const auto& p : perSlide) readPatches += p[0].size();
  report.run = {
      {"command", commandLine.empty() ? "slidetrain predict" : commandLine},
      {"started", localTime(startedAt)},
      {"wall time", duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()) +
                        " (up to this report; inference " + duration(inferenceSeconds) + ")"},
      {"ranks", std::to_string(planes.size())},
      {"device", planes.modelDevice.str()},
      {"checkpoint", ckpt},
      {"split", split + ": " + std::to_string(data.paths.size()) + " " + unit + "s, " + std::to_string(data.samples.size()) +
                    " patches (" + std::to_string(readPatches) + " read)"},
      {"inference throughput", std::to_string(static_cast<int64_t>(std::llround(
                                   static_cast<double>(data.samples.size()) / std::max(1e-9, inferenceSeconds)))) +
                                   " patches/s (all ranks)"},
      {"versions", versionText()},
  };
  report.configs.push_back({"settings of this predict run (resolved)", cfg.yaml()});
  {
    std::ifstream trainConfig(fs::path(runDir) / "config.yaml");
    std::ostringstream text;
    text << trainConfig.rdbuf();
    if (trainConfig) report.configs.push_back({"the training run's config.yaml (run_dir/config.yaml)", text.str()});
  }
  writeReportHtml((fs::path(runDir) / "report.html").string(), report);
  std::printf("wrote %s, %s, %s, %s, %s\n", (fs::path(runDir) / "patches.csv").c_str(),
              (fs::path(runDir) / "slides.csv").c_str(), (fs::path(runDir) / "thresholds.json").c_str(),
              (fs::path(runDir) / "slide_metrics.json").c_str(), (fs::path(runDir) / "report.html").c_str());
  return 0;
}

}  // namespace slidetrain
