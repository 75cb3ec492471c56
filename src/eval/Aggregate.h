#pragma once
// Slide-level pooling of patch probabilities: mean, max, top-k mean, majority vote and a
// quantile.
#include <string>
#include <vector>

#include "src/config/Settings.h"

namespace slidetrain {

struct SlidePooling {
  std::string method = "max";  ///< mean, max, topk, vote, quantile
  int topk = 5;
  double quantile = 0.9;       ///< q of quantile pooling, in (0, 1]
  double threshold = 0.5;      ///< binary: positive when the pooled score >= this
};

/// predict.aggregation, predict.topk, predict.quantile, predict.threshold.
SlidePooling slidePooling(const PredictSettings& predict);

/// Pooled score of class `c` of one slide from every class's patch probabilities
/// (perClass[class][patch]). vote: the share of patches whose most probable class is `c` (ties
/// go to the lower class index, as argmax takes the first maximum); the other methods:
/// poolScores(perClass[c]). Patches with a NaN probability (skipped) are left out; NaN when
/// none is left.
double poolClass(const std::vector<std::vector<double>>& perClass, int c, const SlidePooling& pooling);

/// Slide label from its patches' per-class probabilities (perClass[c][patch]). Binary: class 1
/// when the pooled class-1 score reaches the threshold (vote: the share of patches voting class
/// 1, so 0.5 calls a tied slide positive); k > 2: the class with the highest pooled score (vote:
/// the most voted class). `score` gets the pooled score of class 1 (binary) or of the chosen
/// class (k > 2).
int decideSlide(const std::vector<std::vector<double>>& perClass, const SlidePooling& pooling,
                double* score);

/// Pools the positive-class probabilities of one slide's patches: mean, max, topk (mean of the
/// `topk` largest), quantile (the `quantile`-quantile, linearly interpolated as numpy's default).
/// NaNs (skipped patches) are ignored; an empty list pools to NaN. vote needs every class's
/// probabilities: use poolClass (std::invalid_argument here).
double poolScores(std::vector<double> scores, const std::string& method, int topk = 5,
                  double quantile = 0.9);

}  // namespace slidetrain
