#pragma once
// ROC and precision-recall curves of binary scores, point for point as scikit-learn's
// roc_curve(drop_intermediate=False) and precision_recall_curve, and average precision as its
// average_precision_score; report.html draws them (src/eval/ReportCharts.h).
#include <cstddef>
#include <vector>

namespace slidetrain {

/// One point of a curve: ROC (x = false positive rate, y = true positive rate) or
/// precision-recall (x = recall, y = precision), reached by calling positive every sample whose
/// score is >= threshold.
struct CurvePoint {
  double x = 0, y = 0;
  double threshold = 0;  ///< +inf at the ROC curve's (0, 0); NaN at the PR curve's (0, 1) end
};

/// The ROC curve: (0, 0) at threshold +inf, then one point per distinct score in decreasing
/// order (tied scores make one point), ending at (1, 1). Labels: 0 negative, anything else
/// positive; samples with a NaN score are left out. Empty when either class is absent. The
/// trapezoidal area under it is rocAuc (Metrics.h).
std::vector<CurvePoint> rocCurve(const std::vector<int>& labels, const std::vector<double>& scores);

/// The precision-recall curve, in sklearn's order: one point per distinct score in INCREASING
/// order (precision = TP / (TP + FP), recall = TP / positives at score >= it), then the end point
/// (recall 0, precision 1) with a NaN threshold. Empty when there is no positive sample.
std::vector<CurvePoint> precisionRecallCurve(const std::vector<int>& labels, const std::vector<double>& scores);

/// Average precision: sum over the distinct scores, in decreasing order, of (R_n - R_{n-1}) P_n
/// (sklearn's step-wise area, not the trapezoid). -1 when there is no positive sample.
double averagePrecision(const std::vector<int>& labels, const std::vector<double>& scores);

/// At most `maxPoints` (>= 2) of `curve` for drawing: the first, the last and evenly spaced ones
/// between, in order; the curve itself when it is no longer.
std::vector<CurvePoint> thinCurve(const std::vector<CurvePoint>& curve, size_t maxPoints);

}  // namespace slidetrain
