#include "src/eval/Evaluate.h"

#include <cmath>
#include <limits>

#include <ATen/ATen.h>

#include "src/eval/Aggregate.h"

namespace slidetrain {

EvalResult evaluateSplit(Model& model, const SplitData& data, int numClasses,
                         const InferenceOptions& io, const SlidePooling& pooling, dist::Comm& comm) {
  EvalResult r;
  r.probabilities = predictProbabilities(model, data, numClasses, io, comm);
  const at::Tensor probs = r.probabilities.contiguous();
  const float* p = probs.data_ptr<float>();
  ConfusionMatrix cm(numClasses);
  std::vector<int> labels;
  std::vector<double> scores;
  std::vector<std::vector<std::vector<double>>> perSlide(
      data.paths.size(), std::vector<std::vector<double>>(static_cast<size_t>(numClasses)));
  double nll = 0;
  for (size_t i = 0; i < data.samples.size(); ++i) {
    const float* row = p + i * static_cast<size_t>(numClasses);
    if (std::isnan(row[0])) continue;  // skipped patch
    const int y = data.samples[i].label;
    int pred = 0;
    for (int c = 1; c < numClasses; ++c)
      if (row[c] > row[pred]) pred = c;
    cm.add(y, pred);
    labels.push_back(y);
    scores.push_back(numClasses > 1 ? row[1] : row[0]);
    nll -= std::log(std::max(static_cast<double>(row[y]), 1e-12));
    for (int c = 0; c < numClasses; ++c) perSlide[static_cast<size_t>(data.samples[i].slide)][c].push_back(row[c]);
  }
  r.patches = static_cast<int64_t>(labels.size());
  r.loss = r.patches > 0 ? nll / static_cast<double>(r.patches) : std::numeric_limits<double>::quiet_NaN();
  // AUC is one-vs-rest of class 1 (Metrics' binary view); meaningful for binary tasks.
  r.patch = Metrics::compute(cm, labels, scores);

  ConfusionMatrix scm(numClasses);
  std::vector<int> slideLabels;
  std::vector<double> slideScores;
  for (size_t s = 0; s < data.paths.size(); ++s) {
    if (perSlide[s][0].empty()) continue;
    double score = 0;
    const int pred = decideSlide(perSlide[s], pooling, &score);
    // k > 2: the slide AUC is one-vs-rest of class 1 (Metrics' binary view), so score class 1.
    if (numClasses > 2) score = poolClass(perSlide[s], 1, pooling);
    scm.add(data.slideLabels[s], pred);
    slideLabels.push_back(data.slideLabels[s]);
    slideScores.push_back(score);
  }
  r.slide = Metrics::compute(scm, slideLabels, slideScores);
  return r;
}

double metricValue(const EvalResult& r, const std::string& name) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (name == "val_loss") return r.loss;
  if (name == "val_accuracy") return r.patch.accuracy;
  if (name == "val_f1") return r.patch.macro.f1;
  if (name == "val_auc") return r.patch.rocAuc < 0 ? nan : r.patch.rocAuc;
  if (name == "val_kappa") return r.patch.kappaQuadratic;
  if (name == "val_slide_accuracy") return r.slide.accuracy;
  return nan;
}

ScoredSet patchScores(const SplitData& data, const at::Tensor& probs) {
  ScoredSet set;
  set.name = "patches";
  const at::Tensor p = probs.to(at::kCPU, at::kFloat).contiguous();
  const float* prob = p.data_ptr<float>();
  for (size_t i = 0; i < data.samples.size(); ++i) {
    const int label = data.samples[i].label;
    if (label < 0 || std::isnan(prob[2 * i + 1])) continue;
    set.labels.push_back(label);
    set.scores.push_back(prob[2 * i + 1]);
  }
  set.auc.auc = rocAuc(set.labels, set.scores);
  return set;
}

}  // namespace slidetrain
