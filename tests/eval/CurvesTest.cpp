// ROC and precision-recall curves against scikit-learn's documented outputs and hand-computed
// points; the ROC curve's area against rocAuc (Mann-Whitney) on random scores with ties.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "src/eval/Curves.h"
#include "src/eval/Metrics.h"

namespace slidetrain {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void expectCurve(const std::vector<CurvePoint>& got, const std::vector<double>& x, const std::vector<double>& y,
                 const std::vector<double>& threshold) {
  ASSERT_EQ(got.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(got[i].x, x[i], 1e-12) << "point " << i;
    EXPECT_NEAR(got[i].y, y[i], 1e-12) << "point " << i;
    if (std::isnan(threshold[i])) EXPECT_TRUE(std::isnan(got[i].threshold)) << "point " << i;
    else EXPECT_EQ(got[i].threshold, threshold[i]) << "point " << i;
  }
}

double trapezoid(const std::vector<CurvePoint>& c) {
  double a = 0;
  for (size_t i = 1; i < c.size(); ++i) a += (c[i].x - c[i - 1].x) * (c[i].y + c[i - 1].y) / 2;
  return a;
}

// sklearn.metrics.roc_curve's docstring example: y = [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8]
// -> fpr [0, 0, 0.5, 0.5, 1], tpr [0, 0.5, 0.5, 1, 1], thresholds [inf, 0.8, 0.4, 0.35, 0.1].
TEST(Curves, RocMatchesSklearnExample) {
  const std::vector<int> y{0, 0, 1, 1};
  const std::vector<double> s{0.1, 0.4, 0.35, 0.8};
  expectCurve(rocCurve(y, s), {0, 0, 0.5, 0.5, 1}, {0, 0.5, 0.5, 1, 1}, {kInf, 0.8, 0.4, 0.35, 0.1});
  EXPECT_NEAR(trapezoid(rocCurve(y, s)), 0.75, 1e-12);  // roc_auc_score of the example
}

// precision_recall_curve's docstring example (same data): precision [0.5, 0.667, 0.5, 1, 1],
// recall [1, 1, 0.5, 0.5, 0], thresholds [0.1, 0.35, 0.4, 0.8]; average_precision_score 0.8333.
TEST(Curves, PrecisionRecallMatchesSklearnExample) {
  const std::vector<int> y{0, 0, 1, 1};
  const std::vector<double> s{0.1, 0.4, 0.35, 0.8};
  expectCurve(precisionRecallCurve(y, s), {1, 1, 0.5, 0.5, 0}, {0.5, 2.0 / 3, 0.5, 1, 1}, {0.1, 0.35, 0.4, 0.8, NAN});
  EXPECT_NEAR(averagePrecision(y, s), 5.0 / 6, 1e-12);
}

// Tied scores make one point. Positives score 0.5 and 0.9, negatives 0.5 and 0.1: at >= 0.9
// TP 1 FP 0, at >= 0.5 TP 2 FP 1, at >= 0.1 TP 2 FP 2.
TEST(Curves, TiesMakeOnePoint) {
  const std::vector<int> y{1, 0, 1, 0};
  const std::vector<double> s{0.5, 0.5, 0.9, 0.1};
  expectCurve(rocCurve(y, s), {0, 0, 0.5, 1}, {0, 0.5, 1, 1}, {kInf, 0.9, 0.5, 0.1});
  EXPECT_NEAR(trapezoid(rocCurve(y, s)), 0.875, 1e-12);  // 3.5 of 4 pairs ordered (a tie: half)
  expectCurve(precisionRecallCurve(y, s), {1, 1, 0.5, 0}, {0.5, 2.0 / 3, 1, 1}, {0.1, 0.5, 0.9, NAN});
  EXPECT_NEAR(averagePrecision(y, s), 0.5 * 1 + 0.5 * 2.0 / 3, 1e-12);
}

TEST(Curves, RocAreaIsRocAucOnRandomScoresWithTies) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 2 + static_cast<int>(rng() % 60);
    std::vector<int> y(static_cast<size_t>(n));
    std::vector<double> s(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      y[static_cast<size_t>(i)] = static_cast<int>(rng() % 2);
      s[static_cast<size_t>(i)] = static_cast<double>(rng() % 11) / 10;  // many ties
    }
    const double auc = rocAuc(y, s);
    const std::vector<CurvePoint> roc = rocCurve(y, s);
    if (auc < 0) {
      EXPECT_TRUE(roc.empty());
      continue;
    }
    EXPECT_NEAR(trapezoid(roc), auc, 1e-12) << "trial " << trial;
    EXPECT_EQ(roc.back().x, 1.0);
    EXPECT_EQ(roc.back().y, 1.0);
    for (size_t i = 1; i < roc.size(); ++i) {
      EXPECT_GE(roc[i].x, roc[i - 1].x);
      EXPECT_GE(roc[i].y, roc[i - 1].y);
      EXPECT_LT(roc[i].threshold, roc[i - 1].threshold);
    }
    const double ap = averagePrecision(y, s);
    EXPECT_GT(ap, 0);
    EXPECT_LE(ap, 1 + 1e-12);
  }
}

TEST(Curves, UndefinedCasesAndNaNScores) {
  EXPECT_TRUE(rocCurve({0, 0}, {0.2, 0.4}).empty());
  EXPECT_TRUE(rocCurve({1, 1}, {0.2, 0.4}).empty());
  EXPECT_TRUE(precisionRecallCurve({0, 0}, {0.2, 0.4}).empty());
  EXPECT_EQ(averagePrecision({0, 0}, {0.2, 0.4}), -1);
  // Positives only: precision 1 at every threshold, AP 1.
  expectCurve(precisionRecallCurve({1, 1}, {0.2, 0.7}), {1, 0.5, 0}, {1, 1, 1}, {0.2, 0.7, NAN});
  EXPECT_NEAR(averagePrecision({1, 1}, {0.2, 0.7}), 1, 1e-12);
  // A NaN score (a slide without a read patch) is left out, as if absent.
  expectCurve(rocCurve({0, 1, 1}, {0.3, NAN, 0.6}), {0, 0, 1}, {0, 1, 1}, {kInf, 0.6, 0.3});
  EXPECT_THROW(rocCurve({0, 1}, {0.5}), std::invalid_argument);
}

TEST(Curves, ThinKeepsEndsAndOrder) {
  std::vector<CurvePoint> c;
  for (int i = 0; i <= 1000; ++i) c.push_back({i / 1000.0, i / 1000.0, 1 - i / 1000.0});
  const std::vector<CurvePoint> t = thinCurve(c, 11);
  ASSERT_EQ(t.size(), 11u);
  EXPECT_EQ(t.front().x, 0);
  EXPECT_EQ(t.back().x, 1);
  for (size_t i = 0; i < t.size(); ++i) EXPECT_NEAR(t[i].x, i / 10.0, 1e-12);
  EXPECT_EQ(thinCurve(c, 5000).size(), c.size());
  EXPECT_THROW(thinCurve(c, 1), std::invalid_argument);
}

}  // namespace
}  // namespace slidetrain
