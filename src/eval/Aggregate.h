#pragma once
// Slide-level pooling of patch probabilities (mean, max, top-k mean).
#include <string>
#include <vector>

#include "src/config/Settings.h"

namespace slidetrain {

struct SlidePooling {
  std::string method = "max";  ///< mean, max, topk
  int topk = 5;
  double threshold = 0.5;      ///< binary: positive when the pooled probability >= this
};

/// predict.aggregation, predict.topk, predict.threshold.
SlidePooling slidePooling(const PredictSettings& predict);

/// Slide label from its patches' per-class probabilities (perClass[c][patch]). Binary: class 1
/// when the pooled class-1 probability reaches the threshold; k > 2: the class with the highest
/// pooled probability. `score` gets the pooled probability of class 1 (binary) or of the chosen
/// class (k > 2).
int decideSlide(const std::vector<std::vector<double>>& perClass, const SlidePooling& pooling,
                double* score);

/// Pools the positive-class probabilities of one slide's patches. NaNs (skipped patches) are
/// ignored; an empty list pools to NaN.
double poolScores(std::vector<double> scores, const std::string& method, int topk = 5);

}  // namespace slidetrain
