#pragma once
// Slide-level pooling of patch probabilities (mean, max, top-k mean).
#include <string>
#include <vector>

namespace slidetrain {

/// Pools the positive-class probabilities of one slide's patches. NaNs (skipped patches) are
/// ignored; an empty list pools to NaN.
double poolScores(std::vector<double> scores, const std::string& method, int topk = 5);

}  // namespace slidetrain
