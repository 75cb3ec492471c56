// Curves: see Curves.h. Both curves come from the same cumulative counts that sklearn's
// _binary_clf_curve computes: for each distinct score t, taken in decreasing order, the true and
// false positives among the samples scored >= t.
#include "src/eval/Curves.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace slidetrain {
namespace {

struct Counts {
  std::vector<double> threshold;  ///< distinct scores, decreasing
  std::vector<int64_t> tp, fp;    ///< cumulative counts at each threshold
};

Counts cumulativeCounts(const std::vector<int>& labels, const std::vector<double>& scores) {
  if (labels.size() != scores.size())
    throw std::invalid_argument("curve: " + std::to_string(labels.size()) + " labels but " +
                                std::to_string(scores.size()) + " scores");
  std::vector<size_t> order;
  for (size_t i = 0; i < scores.size(); ++i)
    if (!std::isnan(scores[i])) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  Counts c;
  int64_t tp = 0, fp = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    (labels[order[k]] != 0 ? tp : fp) += 1;
    // A point after the last sample of each run of equal scores.
    if (k + 1 == order.size() || scores[order[k + 1]] != scores[order[k]]) {
      c.threshold.push_back(scores[order[k]]);
      c.tp.push_back(tp);
      c.fp.push_back(fp);
    }
  }
  return c;
}

}  // namespace

std::vector<CurvePoint> rocCurve(const std::vector<int>& labels, const std::vector<double>& scores) {
  const Counts c = cumulativeCounts(labels, scores);
  if (c.tp.empty() || c.tp.back() == 0 || c.fp.back() == 0) return {};
  const double positives = static_cast<double>(c.tp.back()), negatives = static_cast<double>(c.fp.back());
  std::vector<CurvePoint> out{{0, 0, std::numeric_limits<double>::infinity()}};
  for (size_t i = 0; i < c.tp.size(); ++i)
    out.push_back({static_cast<double>(c.fp[i]) / negatives, static_cast<double>(c.tp[i]) / positives, c.threshold[i]});
  return out;
}

std::vector<CurvePoint> precisionRecallCurve(const std::vector<int>& labels, const std::vector<double>& scores) {
  const Counts c = cumulativeCounts(labels, scores);
  if (c.tp.empty() || c.tp.back() == 0) return {};
  const double positives = static_cast<double>(c.tp.back());
  std::vector<CurvePoint> out;
  for (size_t i = c.tp.size(); i-- > 0;) {
    const double called = static_cast<double>(c.tp[i] + c.fp[i]);  // >= 1: a point follows a sample
    out.push_back({static_cast<double>(c.tp[i]) / positives, static_cast<double>(c.tp[i]) / called, c.threshold[i]});
  }
  out.push_back({0, 1, std::numeric_limits<double>::quiet_NaN()});
  return out;
}

double averagePrecision(const std::vector<int>& labels, const std::vector<double>& scores) {
  const std::vector<CurvePoint> pr = precisionRecallCurve(labels, scores);
  if (pr.empty()) return -1;
  // pr runs from the lowest threshold (recall 1) to the end point (recall 0): walk it backwards.
  double ap = 0;
  for (size_t i = pr.size() - 1; i-- > 0;) ap += (pr[i].x - pr[i + 1].x) * pr[i].y;
  return ap;
}

std::vector<CurvePoint> thinCurve(const std::vector<CurvePoint>& curve, size_t maxPoints) {
  if (maxPoints < 2) throw std::invalid_argument("thinCurve: maxPoints must be at least 2");
  if (curve.size() <= maxPoints) return curve;
  std::vector<CurvePoint> out;
  const double step = static_cast<double>(curve.size() - 1) / static_cast<double>(maxPoints - 1);
  for (size_t k = 0; k < maxPoints; ++k)
    out.push_back(curve[static_cast<size_t>(std::llround(static_cast<double>(k) * step))]);
  return out;
}

}  // namespace slidetrain
