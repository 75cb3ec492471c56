#include "src/eval/Aggregate.h"

#include "src/eval/Metrics.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace slidetrain {

SlidePooling slidePooling(const PredictSettings& predict) {
  SlidePooling pool;
  pool.method = predict.aggregation;
  pool.topk = predict.topk;
  pool.quantile = predict.quantile;
  pool.threshold = predict.threshold;
  return pool;
}

double poolScores(std::vector<double> s, const std::string& method, int topk, double quantile) {
  if (method == "vote")
    throw std::invalid_argument("poolScores: vote pools every class's probabilities (poolClass)");
  s.erase(std::remove_if(s.begin(), s.end(), [](double v) { return std::isnan(v); }), s.end());
  if (s.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (method == "mean") return std::accumulate(s.begin(), s.end(), 0.0) / s.size();
  if (method == "max") return *std::max_element(s.begin(), s.end());
  if (method == "topk") {
    const size_t k = std::min<size_t>(s.size(), static_cast<size_t>(std::max(1, topk)));
    std::partial_sort(s.begin(), s.begin() + k, s.end(), std::greater<double>());
    return std::accumulate(s.begin(), s.begin() + k, 0.0) / k;
  }
  if (method == "quantile") return quantileLinear(std::move(s), quantile);
  throw std::invalid_argument("predict.aggregation: unknown method '" + method + "'");
}

double poolClass(const std::vector<std::vector<double>>& perClass, int c, const SlidePooling& pooling) {
  if (pooling.method != "vote")
    return poolScores(perClass[static_cast<size_t>(c)], pooling.method, pooling.topk, pooling.quantile);
  const size_t patches = perClass.empty() ? 0 : perClass[0].size();
  size_t voters = 0, votes = 0;
  for (size_t i = 0; i < patches; ++i) {
    int best = 0;
    bool skipped = false;
    for (size_t k = 0; k < perClass.size(); ++k) {
      skipped = skipped || std::isnan(perClass[k][i]);
      if (perClass[k][i] > perClass[static_cast<size_t>(best)][i]) best = static_cast<int>(k);
    }
    if (skipped) continue;
    ++voters;
    votes += best == c;
  }
  return voters == 0 ? std::numeric_limits<double>::quiet_NaN()
                     : static_cast<double>(votes) / static_cast<double>(voters);
}

int decideSlide(const std::vector<std::vector<double>>& perClass, const SlidePooling& pooling,
                double* score) {
  if (perClass.size() == 2) {
    *score = poolClass(perClass, 1, pooling);
    return *score >= pooling.threshold ? 1 : 0;
  }
  int best = 0;
  double bestScore = -1;
  for (size_t c = 0; c < perClass.size(); ++c) {
    const double v = poolClass(perClass, static_cast<int>(c), pooling);
    if (v > bestScore) bestScore = v, best = static_cast<int>(c);
  }
  *score = bestScore;
  return best;
}

}  // namespace slidetrain
