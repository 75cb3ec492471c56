#include "src/eval/SlideDecisions.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <stdexcept>

#include <ATen/ATen.h>

#include "wsi/JsonWriter.h"

namespace slidetrain {
namespace {

constexpr double kCiLevel = 0.95;

// A JSON number, or null for NaN and for an AUC that is undefined (-1).
void numberOrNull(wsi::JsonWriter& w, double v) {
  if (std::isnan(v) || v < 0) w.value(nullptr);
  else w.value(v);
}

std::ofstream openOrThrow(const std::string& path) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  return out;
}

}  // namespace

const std::vector<std::string>& poolingMethods() {
  static const std::vector<std::string> methods{"mean", "max", "topk", "vote", "quantile"};
  return methods;
}

SlideProbabilities slideProbabilities(const SplitData& data, const at::Tensor& probs, int numClasses) {
  SlideProbabilities perSlide(data.paths.size(), std::vector<std::vector<double>>(static_cast<size_t>(numClasses)));
  const at::Tensor p = probs.contiguous();
  const float* row = p.data_ptr<float>();
  for (size_t i = 0; i < data.samples.size(); ++i, row += numClasses) {
    if (std::isnan(row[0])) continue;  // a skipped patch
    auto& slide = perSlide[static_cast<size_t>(data.samples[i].slide)];
    for (int c = 0; c < numClasses; ++c) slide[static_cast<size_t>(c)].push_back(row[c]);
  }
  return perSlide;
}

std::map<std::string, SlideThreshold> fixedThresholds(const SlidePooling& pooling, int numClasses) {
  std::map<std::string, SlideThreshold> out;
  for (const auto& m : poolingMethods())
    out[m] = numClasses == 2 ? SlideThreshold{pooling.threshold, "fixed"}
                             : SlideThreshold{std::numeric_limits<double>::quiet_NaN(), "argmax"};
  return out;
}

std::map<std::string, SlideThreshold> valThresholds(const SlideProbabilities& val,
                                                    const std::vector<int>& valLabels,
                                                    const SlidePooling& pooling, std::string* why) {
  if (val.size() != valLabels.size())
    throw std::invalid_argument("valThresholds: " + std::to_string(val.size()) + " slides but " +
                                std::to_string(valLabels.size()) + " labels");
  std::map<std::string, SlideThreshold> out = fixedThresholds(pooling, 2);
  size_t used = 0, positive = 0;
  for (size_t s = 0; s < val.size(); ++s)
    if (valLabels[s] >= 0 && !val[s][0].empty()) ++used, positive += valLabels[s] != 0;
  if (positive == 0 || positive == used) {
    if (why)
      *why = used == 0 ? "no val slide has a label and a read patch"
                       : "the " + std::to_string(used) + " val slide" + (used == 1 ? "" : "s") +
                             " with a label and a read patch " + (used == 1 ? "holds" : "hold") +
                             " one class only";
    return out;
  }
  if (why) why->clear();
  for (const auto& m : poolingMethods()) {
    SlidePooling p = pooling;
    p.method = m;
    std::vector<int> labels;
    std::vector<double> scores;
    for (size_t s = 0; s < val.size(); ++s) {
      if (valLabels[s] < 0 || val[s][0].empty()) continue;
      labels.push_back(valLabels[s]);
      scores.push_back(poolClass(val[s], 1, p));
    }
    const double t = youdenThreshold(labels, scores);
    if (!std::isnan(t)) out[m] = {t, "val"};
  }
  return out;
}

void MethodSlides::finish(int reps, uint64_t seed) {
  accuracy = Metrics::compute(confusion).accuracy;
  auc = confusion.numClasses() == 2 && !labels.empty() ? bootstrapAucCi(labels, scores, reps, seed, kCiLevel)
                                                       : AucCi{};
}

void writeThresholdsJson(const std::string& path, const std::map<std::string, SlideThreshold>& t,
                         size_t valSlides) {
  std::ofstream out = openOrThrow(path);
  wsi::JsonWriter w(out);
  w.beginObject(wsi::JsonLayout::OnePerLine).key("val_slides").value(valSlides);
  w.key("methods").beginObject(wsi::JsonLayout::OnePerLine);
  for (const auto& m : poolingMethods()) {
    const SlideThreshold& s = t.at(m);
    w.key(m).beginObject().key("threshold");
    numberOrNull(w, s.value);
    w.key("from").value(s.from).endObject();
  }
  w.endObject().endObject();
  out << "\n";
}

void writeSlideMetricsJson(const std::string& path, const std::vector<MethodSlides>& methods,
                           const std::string& chosen, const std::string& split) {
  std::ofstream out = openOrThrow(path);
  wsi::JsonWriter w(out);
  w.beginObject(wsi::JsonLayout::OnePerLine).key("split").value(split).key("chosen").value(chosen);
  w.key("ci_level").value(kCiLevel).key("methods").beginObject(wsi::JsonLayout::OnePerLine);
  for (const auto& m : methods) {
    w.key(m.method).beginObject().key("slides").value(m.labels.size());
    w.key("accuracy");
    numberOrNull(w, m.labels.empty() ? std::nan("") : m.accuracy);
    w.key("auc");
    numberOrNull(w, m.auc.auc);
    w.key("auc_lo");
    numberOrNull(w, m.auc.reps > 0 ? m.auc.lo : -1);
    w.key("auc_hi");
    numberOrNull(w, m.auc.reps > 0 ? m.auc.hi : -1);
    w.key("auc_reps").value(m.auc.reps).key("threshold");
    numberOrNull(w, m.threshold.value);
    w.key("threshold_from").value(m.threshold.from).endObject();
  }
  w.endObject().endObject();
  out << "\n";
}

}  // namespace slidetrain
