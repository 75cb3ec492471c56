// `slidetrain mil`: bags from the feature files -> data-parallel MIL training -> scores of the
// predicted split: run_dir/mil/{slides.csv, summary.json, heatmaps/, report.html, weights.pt}.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "src/cli/Features.h"
#include "src/data/ClassOrder.h"
#include "src/eval/Metrics.h"
#include "src/eval/Report.h"
#include "src/mil/Bags.h"
#include "src/mil/MilTrainer.h"
#include "src/models/StateDict.h"
#include "src/runtime/Runtime.h"
#include "wsi/JsonWriter.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

void reportSkipped(const mil::BagSet& set) {
  for (const auto& s : set.skipped)
    std::printf("mil: %s split: left out (on_bad_slide=skip): %s\n", set.split.c_str(), s.c_str());
}

/// Attention as percentiles within the slide (CLAM's heatmaps): 0 = least, 1 = most attended.
std::vector<double> percentiles(const at::Tensor& a) {
  const int64_t n = a.numel();
  std::vector<double> out(static_cast<size_t>(n), 1.0);
  if (n < 2) return out;
  const at::Tensor order = std::get<1>(a.sort(0, false));
  for (int64_t r = 0; r < n; ++r)
    out[static_cast<size_t>(order[r].item<int64_t>())] = static_cast<double>(r) / static_cast<double>(n - 1);
  return out;
}

}  // namespace

int runMil(const Settings& cfg) {
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const bool lead = planes.rank() == 0;
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data);
  if (lead) std::printf("%s\n", classOrderLine(cohort).c_str());
  const int numClasses = static_cast<int>(cohort.classes.size());
  const bool skip = cfg.run.skipBadSlides;
  const mil::BagSet train = mil::collectBags(cohort, "train", cfg.mil, cfg.features, skip);
  if (train.bags.empty())
    throw ConfigError("mil: no usable bag in the train split of " + cfg.run.cohort + " (features in " +
                      cfg.features.outDir + "; run `slidetrain features` first)");
  std::optional<mil::BagSet> val;
  if (!cohort.indicesOfSplit("val").empty())
    val = mil::collectBags(cohort, "val", cfg.mil, cfg.features, skip, train.dim);
  const std::string split = cfg.predict.split;
  const mil::BagSet test = mil::collectBags(cohort, split, cfg.mil, cfg.features, skip, train.dim);
  if (lead) {
    reportSkipped(train);
    if (val) reportSkipped(*val);
    reportSkipped(test);
    int64_t patches = 0;
    for (const auto& b : train.bags) patches += b.patches;
    std::printf("mil: %s on %zu train bags (%lld patches, D = %lld), %zu val, %zu %s; %d rank%s\n",
                cfg.mil.model.c_str(), train.bags.size(), static_cast<long long>(patches),
                static_cast<long long>(train.dim), val ? val->bags.size() : size_t{0},
                test.bags.size(), split.c_str(), planes.host->size(), planes.host->size() == 1 ? "" : "s");
  }

  torch::manual_seed(cfg.run.seed);  // the same initial weights on every rank (GradSync checks)
  auto model = mil::buildMilModel(mil::milModelOptions(cfg.mil, train.dim, numClasses));
  model->to(planes.modelDevice);
  const fs::path outDir = fs::path(cfg.run.runDir) / "mil";
  const mil::MilTrainResult trained = mil::trainMil(cfg, *model, train, val ? &*val : nullptr,
                                                    numClasses, planes, outDir.string());
  if (lead) exportStateDict((outDir / "weights.pt").string(), *model);

  // Decision threshold (binary): Youden's J on the val bags when there are some, else 0.5.
  double threshold = 0.5;
  std::string thresholdFrom = "fixed 0.5";
  if (val && !val->bags.empty() && numClasses == 2) {
    const mil::BagScores vs = mil::scoreBags(*model, *val, numClasses, planes);
    std::vector<int> labels;
    std::vector<double> scores;
    for (size_t b = 0; b < val->bags.size(); ++b)
      labels.push_back(val->bags[b].label), scores.push_back(vs.probabilities[static_cast<int64_t>(b)][1].item<double>());
    const double j = youdenThreshold(labels, scores);
    if (!std::isnan(j)) threshold = j, thresholdFrom = "val (Youden's J)";
  }
  const mil::BagScores ts = mil::scoreBags(*model, test, numClasses, planes);
  if (!lead) return 0;

  // One row per bag, or per patient when slide scores are pooled (mil.patient_pooling=mean).
  struct Row { std::string id; int label; int64_t patches; std::vector<double> p; };
  std::vector<Row> rows;
  std::map<std::string, size_t> rowOf;
  const bool poolPatients = cfg.mil.patientLevel && !cfg.mil.patientBag;
  std::vector<size_t> members;  // per row: bags pooled
  std::vector<size_t> count;
  for (size_t b = 0; b < test.bags.size(); ++b) {
    const auto& bag = test.bags[b];
    const std::string id = poolPatients ? bag.patient : bag.id;
    auto it = rowOf.find(id);
    if (it == rowOf.end()) {
      rowOf[id] = rows.size();
      rows.push_back({id, bag.label, 0, std::vector<double>(static_cast<size_t>(numClasses), 0.0)});
      count.push_back(0);
      it = rowOf.find(id);
    }
    Row& r = rows[it->second];
    r.patches += bag.patches;
    for (int c = 0; c < numClasses; ++c) r.p[static_cast<size_t>(c)] += ts.probabilities[static_cast<int64_t>(b)][c].item<double>();
    ++count[it->second];
  }
  std::vector<int> labels;
  std::vector<double> scores;
  ConfusionMatrix cm(numClasses);
  fs::create_directories(outDir);
  std::ofstream csv(outDir / "slides.csv");
  csv << (poolPatients || (cfg.mil.patientLevel && cfg.mil.patientBag) ? "patient_id" : "slide_id")
      << ",label,patches,score,prediction";
  for (const auto& c : cohort.classes) csv << ",p_" << c;
  csv << "\n";
  std::vector<ReportRow> reportRows;
  for (size_t i = 0; i < rows.size(); ++i) {
    Row& r = rows[i];
    for (double& v : r.p) v /= static_cast<double>(count[i]);
    const double score = numClasses == 2 ? r.p[1] : *std::max_element(r.p.begin(), r.p.end());
    const int pred = numClasses == 2 ? (score >= threshold ? 1 : 0)
                                     : static_cast<int>(std::max_element(r.p.begin(), r.p.end()) - r.p.begin());
    if (r.label >= 0) labels.push_back(r.label), scores.push_back(r.p.back()), cm.add(r.label, pred);
    csv << r.id << "," << (r.label >= 0 ? cohort.classes[static_cast<size_t>(r.label)] : "") << ","
        << r.patches << "," << score << "," << cohort.classes[static_cast<size_t>(pred)];
    for (double v : r.p) csv << "," << v;
    csv << "\n";
    ReportRow rr;
    rr.slideId = r.id;
    rr.label = r.label >= 0 ? cohort.classes[static_cast<size_t>(r.label)] : "";
    rr.prediction = cohort.classes[static_cast<size_t>(pred)];
    rr.patches = static_cast<size_t>(r.patches);
    rr.score = score;
    reportRows.push_back(rr);
  }
  csv.close();

  // Attention heatmaps: one per slide, the bag's attention split back by slide, as percentiles.
  if (cfg.mil.heatmaps) {
    fs::create_directories(outDir / "heatmaps");
    std::map<std::string, std::string> heatmapOf;
    for (size_t b = 0; b < test.bags.size(); ++b) {
      const at::Tensor att = mil::bagAttention(*model, test, b, planes.modelDevice);
      const auto slides = mil::bagSlides(test.bags[b]);
      int64_t offset = 0;
      for (size_t k = 0; k < slides.size(); ++k) {
        const mil::Bag& s = slides[k];
        const wsi::CohortEntry& e = cohort.slides[test.bags[b].slides[k]];
        std::vector<wsi::PatchRequest> patches(static_cast<size_t>(s.size()));
        for (int64_t i = 0; i < s.size(); ++i) {
          auto& p = patches[static_cast<size_t>(i)];
          p.x = s.coords[static_cast<size_t>(2 * i)], p.y = s.coords[static_cast<size_t>(2 * i + 1)];
          p.level = 0, p.size = static_cast<int32_t>(s.info.patchSizeLevel0);
        }
        const std::string rel = "heatmaps/" + e.slideId + ".png";
        writeHeatmap(e.path, wsi::SlideOptions{}, patches, percentiles(att.narrow(0, offset, s.size())),
                     (outDir / rel).string(), cfg.predict.heatmapSize);
        offset += s.size();
        heatmapOf[poolPatients ? test.bags[b].patient : test.bags[b].id] = rel;
      }
    }
    for (auto& r : reportRows)
      if (heatmapOf.count(r.slideId)) r.heatmap = heatmapOf[r.slideId];
  }

  const Metrics metrics = Metrics::compute(cm, labels, numClasses == 2 ? scores : std::vector<double>{});
  const AucCi ci = numClasses == 2 ? bootstrapAucCi(labels, scores, cfg.mil.bootstrap, cfg.run.seed) : AucCi{};
  std::string summary;
  char line[512];
  std::snprintf(line, sizeof line, "mil (%s): %zu %s bag(s) with a label; threshold %.4f from %s\n",
                cfg.mil.model.c_str(), labels.size(), split.c_str(), threshold, thresholdFrom.c_str());
  summary += line;
  if (!labels.empty()) {
    summary += metrics.report(cohort.classes);
    std::snprintf(line, sizeof line, "held-out slide-level accuracy (mil %s, %zu bags): %.4f\n",
                  cfg.mil.model.c_str(), labels.size(), metrics.accuracy);
    summary += line;
    if (ci.auc >= 0) {
      std::snprintf(line, sizeof line, "slide AUC %.4f [%.4f, %.4f] (bootstrap 95 %% CI, %d resamples)\n",
                    ci.auc, ci.lo, ci.hi, ci.reps);
      summary += line;
    }
  }
  std::printf("%s", summary.c_str());
  {
    std::ofstream js(outDir / "summary.json");
    wsi::JsonWriter w(js);
    w.beginObject(wsi::JsonLayout::OnePerLine).key("model").value(cfg.mil.model).key("split").value(split)
        .key("bags").value(static_cast<int64_t>(labels.size())).key("accuracy").value(metrics.accuracy)
        .key("auc").value(ci.auc).key("auc_lo").value(ci.lo).key("auc_hi").value(ci.hi)
        .key("threshold").value(threshold).key("threshold_from").value(thresholdFrom)
        .key("epochs").value(trained.epochsRun).key("checkpoint").value(trained.checkpoint).endObject();
    js << "\n";
  }
  writeReportHtml((outDir / "report.html").string(), "slidetrain mil: " + split + " split of " + cfg.run.cohort,
                  reportRows, summary);
  std::printf("wrote %s, %s, %s\n", (outDir / "slides.csv").c_str(), (outDir / "summary.json").c_str(),
              (outDir / "report.html").c_str());
  return 0;
}

}  // namespace slidetrain
