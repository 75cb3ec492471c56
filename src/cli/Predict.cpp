#include "src/cli/Predict.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "distributed/MpiComm.h"
#include "src/eval/Aggregate.h"
#include "src/models/StateDict.h"
#include "src/train/Checkpoint.h"
#include "src/eval/Inference.h"
#include "src/eval/Metrics.h"
#include "src/eval/Report.h"
#include "src/runtime/Runtime.h"
#include "src/data/ClassOrder.h"
#include "src/data/StreamOptions.h"
#include "src/train/Loss.h"
#include "src/train/Trainer.h"

namespace fs = std::filesystem;

namespace slidetrain {

int runPredict(const Settings& cfg) {
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const bool lead = planes.rank() == 0;
  const std::string runDir = cfg.run.runDir;
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data, /*forPrediction=*/true);  // labels optional
  if (lead) std::printf("%s\n", classOrderLine(cohort).c_str());
  const int numClasses = static_cast<int>(cohort.classes.size());
  const std::string split = cfg.predict.split;
  if (cohort.indicesOfSplit(split).empty())
    throw ConfigError("predict.split: no slide of " + cfg.run.cohort + " is in split '" + split + "'");
  SplitData data = prepareSplit(cfg.tiling, cohort, split, *planes.host);

  auto model = buildModel(modelOptions(cfg.model, modelOutputs(lossOptions(cfg.train), numClasses),
                                       cfg.tiling.index.size));
  std::string ckpt = cfg.predict.checkpoint;
  if (ckpt.empty()) ckpt = (fs::path(runDir) / "checkpoints" / "last.pt").string();
  model->to(planes.modelDevice);  // the device rule of training (src/runtime/Runtime.h)
  loadCheckpoint(ckpt, *model, nullptr);

  const InferenceOptions io =
      inferenceOptions(cfg.predict, rankStreamOptions(cfg, planes.modelDevice.is_cuda()),
                       normalization(cfg.data), cfg.augment);
  const at::Tensor probs = predictProbabilities(*model, data, numClasses, io, *planes.device);
  if (!lead) return 0;

  const SlidePooling pooling = slidePooling(cfg.predict);
  const std::string& method = pooling.method;
  const std::vector<std::string> methods{"mean", "max", "topk"};
  std::vector<std::vector<std::vector<double>>> perSlide(
      data.paths.size(), std::vector<std::vector<double>>(numClasses));
  fs::create_directories(runDir);
  std::ofstream pcsv(fs::path(runDir) / "patches.csv");
  pcsv << "slide_id,x,y,level,size,label";
  for (const auto& c : cohort.classes) pcsv << ",p_" << c;
  pcsv << "\n";
  const at::Tensor probsC = probs.contiguous();
  const float* prob = probsC.data_ptr<float>();
  std::vector<int64_t> indexed(data.paths.size(), 0);
  for (size_t i = 0; i < data.samples.size(); ++i) {
    const auto& r = data.samples[i];
    ++indexed[r.slide];
    pcsv << data.slideIds[r.slide] << "," << r.x << "," << r.y << "," << r.level << "," << r.size
         << ",";
    if (r.label >= 0) pcsv << r.label;  // unlabelled slide: empty
    // A skipped (unreadable) patch has NaN probabilities: empty cells, and no vote.
    const bool skipped = std::isnan(prob[i * static_cast<size_t>(numClasses)]);
    for (int c = 0; c < numClasses; ++c) {
      const double p = prob[i * static_cast<size_t>(numClasses) + c];
      pcsv << ",";
      if (!skipped) pcsv << p, perSlide[r.slide][c].push_back(p);
    }
    pcsv << "\n";
  }

  std::ofstream scsv(fs::path(runDir) / "slides.csv");
  scsv << "slide_id,label,patches";
  for (const auto& m : methods) scsv << ",score_" << m << ",pred_" << m;
  scsv << ",note\n";
  // Slides without a usable patch get no score: they are listed with the reason, left out of
  // the metrics (a NaN score would poison the AUC's sort) and counted in the summary.
  std::vector<std::string> unscored;
  std::map<std::string, ConfusionMatrix> cms;
  for (const auto& m : methods) cms.emplace(m, ConfusionMatrix(numClasses));
  std::vector<int> labels;
  std::vector<double> scores;
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
      unscored.push_back(data.slideIds[s] + ": " + why);
      continue;
    }
    for (const auto& m : methods) {
      SlidePooling withMethod = pooling;
      withMethod.method = m;
      double score = 0;
      const int pred = decideSlide(perSlide[s], withMethod, &score);
      if (label >= 0) cms.at(m).add(label, pred);  // metrics over labelled slides only
      scsv << "," << score << "," << cohort.classes[pred];
      if (m == method) {
        if (label >= 0) labels.push_back(label), scores.push_back(score);
        rows[s].prediction = cohort.classes[pred], rows[s].score = score;
      }
    }
    scsv << ",\n";
  }
  const size_t scored = labels.size();  // labelled slides with a score: what the metrics cover
  if (!unscored.empty()) {
    std::printf("%zu of %zu slides have no usable patch and are left out of the metrics:\n",
                unscored.size(), data.paths.size());
    for (const auto& u : unscored) std::printf("  %s\n", u.c_str());
  }
  if (unlabelled > 0)
    std::printf("%zu of %zu slides have no label: their predictions are in slides.csv; the "
                "metrics cover the %zu labelled slide%s with a score\n", unlabelled,
                data.paths.size(), scored, scored == 1 ? "" : "s");
  const Metrics chosen = Metrics::compute(cms.at(method), labels, numClasses == 2 ? scores : std::vector<double>{});
  std::string summary;
  if (scored == 0) {
    summary = "no slide with a label and a score: no metrics\n";
    std::printf("%s", summary.c_str());
  } else {
    for (const auto& m : methods)
      std::printf("slide-level accuracy (%s pooling): %.4f\n", m.c_str(), Metrics::compute(cms.at(m)).accuracy);
    std::printf("%s", chosen.report(cohort.classes).c_str());
    std::printf("held-out slide-level accuracy (%s pooling, %zu slides): %.4f\n", method.c_str(),
                scored, chosen.accuracy);
    summary = chosen.report(cohort.classes) + "\nslide-level accuracy (" + method + " pooling): " +
              std::to_string(chosen.accuracy) + "\n";
  }
  if (cfg.predict.heatmaps) {
    // Heatmap of P(not class 0): the positive class's probability for binary tasks.
    fs::create_directories(fs::path(runDir) / "heatmaps");
    std::vector<std::vector<wsi::PatchRequest>> patchesOf(data.paths.size());
    std::vector<std::vector<double>> probOf(data.paths.size());
    for (size_t i = 0; i < data.samples.size(); ++i) {
      const auto& r = data.samples[i];
      patchesOf[r.slide].push_back(r);
      probOf[r.slide].push_back(1.0 - prob[i * static_cast<size_t>(numClasses)]);
    }
    for (size_t s = 0; s < data.paths.size(); ++s) {
      rows[s].heatmap = "heatmaps/" + data.slideIds[s] + ".png";
      writeHeatmap(data.paths[s], data.slideOptions[s], patchesOf[s], probOf[s],
                   (fs::path(runDir) / rows[s].heatmap).string(),
                   cfg.predict.heatmapSize);
    }
  }
  writeReportHtml((fs::path(runDir) / "report.html").string(), "slidetrain: " + split + " split of " + cfg.run.cohort,
                  rows, summary);
  std::printf("wrote %s, %s, %s\n", (fs::path(runDir) / "patches.csv").c_str(),
              (fs::path(runDir) / "slides.csv").c_str(), (fs::path(runDir) / "report.html").c_str());
  return 0;
}

}  // namespace slidetrain
