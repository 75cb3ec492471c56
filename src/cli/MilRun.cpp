// `slidetrain mil`: bags from the feature files -> data-parallel MIL training -> scores of the
// predicted split: run_dir/mil/{slides.csv, summary.json, heatmaps/, report.html, weights.pt};
// with mil.folds >= 2 one such run per fold (src/cli/MilCrossValidation.cpp).
#include "src/cli/MilRun.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>
#include <utility>

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "src/cli/Features.h"
#include "src/cli/MilCrossValidation.h"
#include "src/data/ClassOrder.h"
#include "src/eval/Metrics.h"
#include "src/eval/Exports.h"
#include "src/eval/Report.h"
#include "src/eval/SlideViewer.h"
#include "src/mil/MilTrainer.h"
#include "src/models/StateDict.h"
#include "src/runtime/Runtime.h"
#include "wsi/JsonWriter.h"
#include "wsi/PatchIndexFile.h"

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

bool poolsPatients(const MilSettings& m) { return m.patientLevel && !m.patientBag; }

/// One scored row: a bag, or a patient when slide scores are pooled (mil.patient_pooling=mean).
struct ScoreRow {
  std::string id;
  int label;
  int64_t patches;
  std::vector<double> p;  ///< class probabilities (the mean over a patient's bags)
};

std::vector<ScoreRow> scoreRows(const mil::BagSet& set, const at::Tensor& probabilities, int numClasses,
                                bool poolPatients) {
  std::vector<ScoreRow> rows;
  std::map<std::string, size_t> rowOf;
  std::vector<size_t> count;
  for (size_t b = 0; b < set.bags.size(); ++b) {
    const auto& bag = set.bags[b];
    const std::string id = poolPatients ? bag.patient : bag.id;
    auto it = rowOf.find(id);
    if (it == rowOf.end()) {
      it = rowOf.emplace(id, rows.size()).first;
      rows.push_back({id, bag.label, 0, std::vector<double>(static_cast<size_t>(numClasses), 0.0)});
      count.push_back(0);
    }
    ScoreRow& r = rows[it->second];
    r.patches += bag.patches;
    for (int c = 0; c < numClasses; ++c)
      r.p[static_cast<size_t>(c)] += probabilities[static_cast<int64_t>(b)][c].item<double>();
    ++count[it->second];
  }
  for (size_t i = 0; i < rows.size(); ++i)
    for (double& v : rows[i].p) v /= static_cast<double>(count[i]);
  return rows;
}

/// What writeScores found: the labelled rows' labels and positive-class scores, and the calls.
struct Scored {
  std::vector<int> labels;
  std::vector<double> scores;
  ConfusionMatrix cm;
  std::vector<ReportRow> report;
};

/// Writes slides.csv's layout (id, label, patches, score, prediction, p_<class>); binary calls
/// are score >= threshold, otherwise the arg-max.
Scored writeScores(const fs::path& path, const std::vector<ScoreRow>& rows, const std::vector<std::string>& classes,
                   double threshold, const std::string& idColumn) {
  const int k = static_cast<int>(classes.size());
  Scored out{{}, {}, ConfusionMatrix(k), {}};
  std::ofstream csv(path);
  csv << idColumn << ",label,patches,score,prediction";
  for (const auto& c : classes) csv << ",p_" << c;
  csv << "\n";
  for (const ScoreRow& r : rows) {
    const double score = k == 2 ? r.p[1] : *std::max_element(r.p.begin(), r.p.end());
    const int pred = k == 2 ? (score >= threshold ? 1 : 0)
                            : static_cast<int>(std::max_element(r.p.begin(), r.p.end()) - r.p.begin());
    if (r.label >= 0) out.labels.push_back(r.label), out.scores.push_back(r.p.back()), out.cm.add(r.label, pred);
    const std::string label = r.label >= 0 ? classes[static_cast<size_t>(r.label)] : "";
    const std::string prediction = classes[static_cast<size_t>(pred)];
    csv << r.id << "," << label << "," << r.patches << "," << score << "," << prediction;
    for (double v : r.p) csv << "," << v;
    csv << "\n";
    ReportRow rr;
    rr.slideId = r.id;
    rr.label = label;
    rr.prediction = prediction;
    rr.patches = static_cast<size_t>(r.patches);
    rr.score = score;
    out.report.push_back(rr);
  }
  return out;
}

/// The report's pictures of one row: the attention heatmap (path and inline preview) and, with
/// predict.viewer, the slide's viewer page with the attention as its overlay.
struct AttentionImages {
  std::string heatmap, jpeg, viewer;
};

/// The attention of one slide as the viewer's overlay: a two-"class" grid whose positive share is
/// the attention percentile (blue = least, red = most attended), at the features' patch grid.
SlidePredictions attentionGrid(const Settings& cfg, const mil::Bag& s, const std::vector<double>& pct,
                               const std::string& slideId) {
  SlidePredictions p;
  p.slideId = slideId;
  p.classes = {"low attention", "high attention"};
  p.side0 = static_cast<double>(s.info.patchSizeLevel0);
  const auto& grid = cfg.tiling.index;
  p.step0 = p.side0 * (grid.stride > 0 ? static_cast<double>(grid.stride) / grid.size : 1.0);
  for (int64_t i = 0; i < s.size(); ++i) {
    p.origins.push_back({s.coords[static_cast<size_t>(2 * i)], s.coords[static_cast<size_t>(2 * i + 1)]});
    p.probs.push_back(static_cast<float>(1.0 - pct[static_cast<size_t>(i)]));
    p.probs.push_back(static_cast<float>(pct[static_cast<size_t>(i)]));
  }
  return p;
}

/// Attention heatmaps of the scored bags, one per slide (a patient bag's attention split back by
/// slide), as percentiles; with predict.viewer also a viewer page per slide in outDir/viewer/
/// (a patient bag's row links its first slide's). Returns the report's pictures per row id.
std::map<std::string, AttentionImages> writeAttentionHeatmaps(const Settings& cfg, const wsi::Cohort& cohort,
                                                              mil::MilModel& model, const mil::BagSet& set,
                                                              c10::Device device, const fs::path& outDir) {
  fs::create_directories(outDir / "heatmaps");
  std::map<std::string, AttentionImages> heatmapOf;
  for (size_t b = 0; b < set.bags.size(); ++b) {
    const at::Tensor att = mil::bagAttention(model, set, b, device);
    const auto slides = mil::bagSlides(set.bags[b]);
    int64_t offset = 0;
    for (size_t k = 0; k < slides.size(); ++k) {
      const mil::Bag& s = slides[k];
      const wsi::CohortEntry& e = cohort.slides[set.bags[b].slides[k]];
      std::vector<wsi::PatchRequest> patches(static_cast<size_t>(s.size()));
      for (int64_t i = 0; i < s.size(); ++i) {
        auto& p = patches[static_cast<size_t>(i)];
        p.x = s.coords[static_cast<size_t>(2 * i)], p.y = s.coords[static_cast<size_t>(2 * i + 1)];
        p.level = 0, p.size = static_cast<int32_t>(s.info.patchSizeLevel0);
      }
      const std::string rel = "heatmaps/" + e.slideId + ".png";
      const std::vector<double> pct = percentiles(att.narrow(0, offset, s.size()));
      const wsi::RgbImage img = writeHeatmap(e.path, wsi::SlideOptions{}, patches, pct, (outDir / rel).string(),
                                            cfg.predict.heatmapSize);
      offset += s.size();
      AttentionImages& out = heatmapOf[poolsPatients(cfg.mil) ? set.bags[b].patient : set.bags[b].id];
      if (out.heatmap.empty()) out.heatmap = rel, out.jpeg = heatmapPreview(img);
      if (cfg.predict.viewer) {
        ViewerSlide v{e.slideId, e.path, wsi::SlideOptions{}, {}};
        if (!e.label.empty()) v.facts.push_back({"label", e.label});
        v.facts.push_back({"overlay", "attention of " + cfg.mil.model + " (percentile within the slide)"});
        const std::string page = writeSlideViewer((outDir / "viewer").string(), v, attentionGrid(cfg, s, pct, e.slideId),
                                                  cfg.predict.viewerMaxSide, "../report.html");
        if (out.viewer.empty()) out.viewer = "viewer/" + page;
      }
    }
  }
  return heatmapOf;
}

}  // namespace

MilBags collectMilBags(const Settings& cfg, const wsi::Cohort& cohort, const dist::Planes& planes) {
  const bool skip = cfg.run.skipBadSlides;
  MilBags b{mil::collectBags(cohort, "train", cfg.mil, cfg.features, skip), std::nullopt, {}};
  if (b.train.bags.empty())
    throw ConfigError("mil: no usable bag in the train split of " + cfg.run.cohort + " (features in " +
                      cfg.features.outDir + "; run `slidetrain features` first)");
  if (!cohort.indicesOfSplit("val").empty())
    b.val = mil::collectBags(cohort, "val", cfg.mil, cfg.features, skip, b.train.dim);
  b.scored = mil::collectBags(cohort, cfg.predict.split, cfg.mil, cfg.features, skip, b.train.dim);
  if (planes.rank() == 0) {
    reportSkipped(b.train);
    if (b.val) reportSkipped(*b.val);
    reportSkipped(b.scored);
    int64_t patches = 0;
    for (const auto& bag : b.train.bags) patches += bag.patches;
    std::printf("mil: %s on %zu train bags (%lld patches, D = %lld), %zu val, %zu %s; %d rank%s\n",
                cfg.mil.model.c_str(), b.train.bags.size(), static_cast<long long>(patches),
                static_cast<long long>(b.train.dim), b.val ? b.val->bags.size() : size_t{0},
                b.scored.bags.size(), cfg.predict.split.c_str(), planes.host->size(),
                planes.host->size() == 1 ? "" : "s");
  }
  return b;
}

std::string milRunFingerprint(const Settings& cfg, const MilBags& bags) {
  std::string text = mil::milFingerprint(cfg, bags.train, bags.val ? &*bags.val : nullptr);
  text += "mil.epochs=" + std::to_string(cfg.mil.epochs) + "\nmil.bootstrap=" + std::to_string(cfg.mil.bootstrap) +
          "\nmil.heatmaps=" + std::to_string(cfg.mil.heatmaps) + "\nscored=" + cfg.predict.split + ":";
  for (const auto& b : bags.scored.bags) text += b.id + ":" + std::to_string(b.label) + ":" + std::to_string(b.patches) + ",";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(wsi::detail::fnv1a(text.data(), text.size())));
  return hex;
}

void runMilOnce(const Settings& cfg, const dist::Planes& planes, const wsi::Cohort& cohort, const MilBags& bags,
                const std::string& outDirName, bool outOfFold) {
  const bool lead = planes.rank() == 0;
  const int numClasses = static_cast<int>(cohort.classes.size());
  const mil::BagSet& train = bags.train;
  const mil::BagSet& test = bags.scored;
  const std::optional<mil::BagSet>& val = bags.val;
  const std::string split = cfg.predict.split;

  torch::manual_seed(cfg.run.seed);  // the same initial weights on every rank (GradSync checks)
  auto model = mil::buildMilModel(mil::milModelOptions(cfg.mil, train.dim, numClasses));
  model->to(planes.modelDevice);
  const fs::path outDir(outDirName);
  const mil::MilTrainResult trained = mil::trainMil(cfg, *model, train, val ? &*val : nullptr,
                                                    numClasses, planes, outDir.string());
  if (lead) exportStateDict((outDir / "weights.pt").string(), *model);

  // Decision threshold (binary): Youden's J on the val bags when there are some, else 0.5.
  double threshold = 0.5;
  std::string thresholdFrom = "fixed 0.5";
  const bool hasVal = val && !val->bags.empty();
  mil::BagScores vs;
  if (hasVal && (numClasses == 2 || outOfFold)) vs = mil::scoreBags(*model, *val, numClasses, planes);
  if (hasVal && numClasses == 2) {
    std::vector<int> labels;
    std::vector<double> scores;
    for (size_t b = 0; b < val->bags.size(); ++b)
      labels.push_back(val->bags[b].label), scores.push_back(vs.probabilities[static_cast<int64_t>(b)][1].item<double>());
    const double j = youdenThreshold(labels, scores);
    if (!std::isnan(j)) threshold = j, thresholdFrom = "val (Youden's J)";
  }
  const mil::BagScores ts = mil::scoreBags(*model, test, numClasses, planes);
  if (!lead) return;

  const bool poolPatients = poolsPatients(cfg.mil);
  const std::string idColumn = cfg.mil.patientLevel ? "patient_id" : "slide_id";
  fs::create_directories(outDir);
  if (outOfFold)
    writeScores(outDir / "oof.csv", hasVal ? scoreRows(*val, vs.probabilities, numClasses, poolPatients)
                                           : std::vector<ScoreRow>{},
                cohort.classes, 0.5, idColumn);
  Scored scored = writeScores(outDir / "slides.csv", scoreRows(test, ts.probabilities, numClasses, poolPatients),
                              cohort.classes, threshold, idColumn);
  if (cfg.mil.heatmaps) {
    auto heatmapOf = writeAttentionHeatmaps(cfg, cohort, *model, test, planes.modelDevice, outDir);
    for (auto& r : scored.report)
      if (heatmapOf.count(r.slideId)) {
        const AttentionImages& a = heatmapOf[r.slideId];
        r.heatmap = a.heatmap, r.heatmapJpeg = a.jpeg, r.viewer = a.viewer;
      }
  }

  const std::vector<int>& labels = scored.labels;
  const Metrics metrics = Metrics::compute(scored.cm, labels, numClasses == 2 ? scored.scores : std::vector<double>{});
  const AucCi ci = numClasses == 2 ? bootstrapAucCi(labels, scored.scores, cfg.mil.bootstrap, cfg.run.seed) : AucCi{};
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
  ReportContent report;
  report.title = "slidetrain mil: " + split + " split of " + cfg.run.cohort;
  report.summaryText = summary;
  report.classes = cohort.classes;
  report.unit = poolPatients ? "patients" : "slides";
  report.rows = scored.report;
  report.hasMetrics = !labels.empty();
  report.metrics = metrics;
  report.metricsCaption = "mil " + cfg.mil.model + (numClasses == 2 ? ", threshold from " + thresholdFrom : "");
  if (numClasses == 2) report.slideCurves.push_back({"mil " + cfg.mil.model, labels, scored.scores, ci});
  report.training = readTrainingLog((outDir / "metrics.jsonl").string());
  for (const auto& n : report.training.notes) report.qc.push_back(n);
  report.run = {{"model", cfg.mil.model},
                {"ranks", std::to_string(planes.size())},
                {"device", planes.modelDevice.str()},
                {"training epochs", std::to_string(trained.epochsRun)},
                {"checkpoint", trained.checkpoint}};
  report.configs.push_back({"settings (resolved)", cfg.yaml()});
  writeReportHtml((outDir / "report.html").string(), report);
  {  // last: cross-validation takes a fold whose summary.json has its fingerprint as finished
    std::ofstream js(outDir / "summary.json");
    wsi::JsonWriter w(js);
    w.beginObject(wsi::JsonLayout::OnePerLine).key("model").value(cfg.mil.model).key("split").value(split)
        .key("bags").value(static_cast<int64_t>(labels.size())).key("accuracy").value(metrics.accuracy)
        .key("auc").value(ci.auc).key("auc_lo").value(ci.lo).key("auc_hi").value(ci.hi)
        .key("threshold").value(threshold).key("threshold_from").value(thresholdFrom)
        .key("epochs").value(trained.epochsRun).key("checkpoint").value(trained.checkpoint)
        .key("fingerprint").value(milRunFingerprint(cfg, bags)).endObject();
    js << "\n";
  }
  std::printf("wrote %s, %s, %s\n", (outDir / "slides.csv").c_str(), (outDir / "summary.json").c_str(),
              (outDir / "report.html").c_str());
}

int runMil(const Settings& cfg) {
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data);
  if (planes.rank() == 0) std::printf("%s\n", classOrderLine(cohort).c_str());
  if (cfg.mil.folds >= 2) return runMilCrossValidation(cfg, planes, cohort);
  const MilBags bags = collectMilBags(cfg, cohort, planes);
  runMilOnce(cfg, planes, cohort, bags, (fs::path(cfg.run.runDir) / "mil").string(), false);
  return 0;
}

}  // namespace slidetrain
