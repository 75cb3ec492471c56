#pragma once
// Slide decisions of a prediction for every pooling method: the slides' class probabilities
// from the patch probabilities, each method's binary threshold (predict.threshold, or Youden's J
// on the val split), and per method the slide metrics with a bootstrap CI of the AUC
// (thresholds.json, slide_metrics.json).
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "src/data/SplitData.h"
#include "src/eval/Aggregate.h"
#include "src/eval/Metrics.h"

namespace slidetrain {

/// The pooling methods predict reports, in the column order of slides.csv.
const std::vector<std::string>& poolingMethods();

/// perSlide[slide][class][patch]: the class probabilities of each slide's read patches.
using SlideProbabilities = std::vector<std::vector<std::vector<double>>>;

/// Groups predictProbabilities' [samples, classes] rows by slide; rows of skipped patches (NaN)
/// are left out, so a slide without a read patch has empty lists.
SlideProbabilities slideProbabilities(const SplitData& data, const at::Tensor& probs, int numClasses);

/// One method's binary decision threshold and where it came from.
struct SlideThreshold {
  double value = 0.5;
  std::string from = "fixed";  ///< val (Youden's J on the val slides), fixed, or argmax (k > 2)
};

/// Every method at the fixed pooling.threshold; for k > 2 classes there is no threshold (the
/// class with the highest pooled score wins): value NaN, from "argmax".
std::map<std::string, SlideThreshold> fixedThresholds(const SlidePooling& pooling, int numClasses);

/// Binary tasks: per method, youdenThreshold of the pooled class-1 scores of the val slides that
/// have a label (>= 0) and a read patch. When those slides hold one class only (or none), every
/// method keeps the fixed threshold and `why` (when given) says so; else `why` is cleared.
std::map<std::string, SlideThreshold> valThresholds(const SlideProbabilities& val,
                                                    const std::vector<int>& valLabels,
                                                    const SlidePooling& pooling, std::string* why);

/// Slide-level results of one pooling method over the labelled slides with a score.
struct MethodSlides {
  std::string method;
  SlideThreshold threshold;
  ConfusionMatrix confusion;
  std::vector<int> labels;
  std::vector<double> scores;  ///< pooled class-1 score (binary tasks; the AUC's input)
  AucCi auc;                   ///< filled by finish()
  double accuracy = 0;

  /// Bootstrap CI of the AUC (binary, `reps` resamples, seeded) and the accuracy.
  void finish(int reps, uint64_t seed);
};

/// thresholds.json: {"split": ..., "methods": {"mean": {"threshold": 0.21, "from": "val"}, ...}}
/// with the number of val slides the thresholds came from (0 when none did).
void writeThresholdsJson(const std::string& path, const std::map<std::string, SlideThreshold>& t,
                         size_t valSlides);

/// slide_metrics.json: per method accuracy, auc, auc_lo, auc_hi (null when undefined),
/// threshold, threshold_from, slides; and the chosen method, CI level and resamples.
void writeSlideMetricsJson(const std::string& path, const std::vector<MethodSlides>& methods,
                           const std::string& chosen, const std::string& split);

}  // namespace slidetrain
