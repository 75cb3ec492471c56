#include "src/eval/Aggregate.h"

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
  pool.threshold = predict.threshold;
  return pool;
}

double poolScores(std::vector<double> s, const std::string& method, int topk) {
  s.erase(std::remove_if(s.begin(), s.end(), [](double v) { return std::isnan(v); }), s.end());
  if (s.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (method == "mean") return std::accumulate(s.begin(), s.end(), 0.0) / s.size();
  if (method == "max") return *std::max_element(s.begin(), s.end());
  if (method == "topk") {
    const size_t k = std::min<size_t>(s.size(), static_cast<size_t>(std::max(1, topk)));
    std::partial_sort(s.begin(), s.begin() + k, s.end(), std::greater<double>());
    return std::accumulate(s.begin(), s.begin() + k, 0.0) / k;
  }
  throw std::invalid_argument("predict.aggregation: unknown method '" + method + "'");
}

int decideSlide(const std::vector<std::vector<double>>& perClass, const SlidePooling& pooling,
                double* score) {
  if (perClass.size() == 2) {
    *score = poolScores(perClass[1], pooling.method, pooling.topk);
    return *score >= pooling.threshold ? 1 : 0;
  }
  int best = 0;
  double bestScore = -1;
  for (size_t c = 0; c < perClass.size(); ++c) {
    const double v = poolScores(perClass[c], pooling.method, pooling.topk);
    if (v > bestScore) bestScore = v, best = static_cast<int>(c);
  }
  *score = bestScore;
  return best;
}

}  // namespace slidetrain
