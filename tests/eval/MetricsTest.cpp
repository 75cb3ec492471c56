// Metrics against hand-computed values and scikit-learn's documented outputs.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "src/eval/Metrics.h"

namespace slidetrain {
namespace {

ConfusionMatrix fromPairs(int k, const std::vector<int>& truth, const std::vector<int>& pred) {
  ConfusionMatrix cm(k);
  for (size_t i = 0; i < truth.size(); ++i) cm.add(truth[i], pred[i]);
  return cm;
}

TEST(ConfusionMatrix, CountsAndBounds) {
  ConfusionMatrix cm(3);
  cm.add(0, 1);
  cm.add(0, 1, 4);
  cm.add(2, 2);
  EXPECT_EQ(cm.at(0, 1), 5);
  EXPECT_EQ(cm.total(), 6);
  EXPECT_THROW(cm.add(3, 0), std::out_of_range);
  auto copy = ConfusionMatrix::fromCounts(3, cm.counts());
  EXPECT_EQ(copy.at(2, 2), 1);
  EXPECT_THROW(ConfusionMatrix::fromCounts(2, {1, 2, 3}), std::invalid_argument);
}

TEST(Metrics, BinaryCountsAndRates) {
  auto cm = fromPairs(2, {0, 1, 1, 0, 1, 1, 0, 0}, {0, 1, 0, 0, 1, 1, 1, 0});
  Metrics m = Metrics::compute(cm);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  EXPECT_EQ(m.tp, 3);
  EXPECT_EQ(m.tn, 3);
  EXPECT_EQ(m.fp, 1);
  EXPECT_EQ(m.fn, 1);
  EXPECT_DOUBLE_EQ(m.tpr, 0.75);
  EXPECT_DOUBLE_EQ(m.tnr, 0.75);
  EXPECT_DOUBLE_EQ(m.fnr, 0.25);
  EXPECT_DOUBLE_EQ(m.fpr, 0.25);
  EXPECT_DOUBLE_EQ(m.perClass[1].precision, 0.75);
  EXPECT_EQ(m.rocAuc, -1);  // no scores given
}

TEST(Metrics, SklearnPrecisionRecallF1Example) {
  // sklearn precision_recall_fscore_support docs: macro (0.22, 0.33, 0.27), zero_division 0.
  auto cm = fromPairs(3, {0, 1, 2, 0, 1, 2}, {0, 2, 1, 0, 0, 1});
  Metrics m = Metrics::compute(cm);
  EXPECT_NEAR(m.perClass[0].precision, 2.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(m.perClass[0].recall, 1.0);
  EXPECT_NEAR(m.perClass[0].f1, 0.8, 1e-12);
  EXPECT_DOUBLE_EQ(m.perClass[1].f1, 0.0);
  EXPECT_NEAR(m.macro.precision, 2.0 / 9, 1e-12);
  EXPECT_NEAR(m.macro.recall, 1.0 / 3, 1e-12);
  EXPECT_NEAR(m.macro.f1, 0.8 / 3, 1e-12);
  EXPECT_NEAR(m.weighted.precision, 2.0 / 9, 1e-12);
  EXPECT_NEAR(m.weighted.f1, 0.8 / 3, 1e-12);
  EXPECT_EQ(m.macro.support, 6);
}

TEST(Metrics, ReportMatchesSklearnLayout) {
  auto cm = fromPairs(3, {0, 1, 2, 2, 2}, {0, 0, 2, 2, 1});
  std::string expected =
      "              precision    recall  f1-score   support\n"
      "\n"
      "     class 0       0.50      1.00      0.67         1\n"
      "     class 1       0.00      0.00      0.00         1\n"
      "     class 2       1.00      0.67      0.80         3\n"
      "\n"
      "    accuracy                           0.60         5\n"
      "   macro avg       0.50      0.56      0.49         5\n"
      "weighted avg       0.70      0.60      0.61         5\n";
  EXPECT_EQ(Metrics::compute(cm).report({"class 0", "class 1", "class 2"}), expected);
}

TEST(RocAuc, KnownValuesAndTies) {
  EXPECT_DOUBLE_EQ(rocAuc({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}), 0.75);  // sklearn docs
  // A tied positive/negative pair counts as half: (0.5 + 1 + 1 + 1) / 4.
  EXPECT_DOUBLE_EQ(rocAuc({0, 1, 0, 1}, {0.5, 0.5, 0.2, 0.9}), 0.875);
  EXPECT_DOUBLE_EQ(rocAuc({1, 0, 1, 0}, {0.3, 0.3, 0.3, 0.3}), 0.5);
  EXPECT_DOUBLE_EQ(rocAuc({0, 0, 1}, {0.9, 0.8, 0.1}), 0.0);
  EXPECT_EQ(rocAuc({1, 1, 1}, {0.2, 0.4, 0.6}), -1);
  EXPECT_THROW(rocAuc({0, 1}, {0.5}), std::invalid_argument);
}

TEST(Youden, HandComputedExample) {
  // Negatives 0.1, 0.4, 0.5; positives 0.35, 0.7, 0.8. TPR - FPR at t = 0.8: 1/3; 0.7: 2/3;
  // 0.5: 1/3; 0.4: 0; 0.35: 1/3; 0.1: 0. Best t = 0.7, next lower score 0.5: midpoint 0.6.
  EXPECT_DOUBLE_EQ(youdenThreshold({0, 0, 1, 1, 0, 1}, {0.1, 0.4, 0.35, 0.8, 0.5, 0.7}), 0.6);
  // Perfect separation: midway between the lowest positive and the highest negative score.
  EXPECT_DOUBLE_EQ(youdenThreshold({0, 1, 0, 1}, {0.1, 0.3, 0.2, 0.9}), 0.25);
  // Any non-zero label is positive, as in rocAuc.
  EXPECT_DOUBLE_EQ(youdenThreshold({0, 2, 0, 2}, {0.1, 0.3, 0.2, 0.9}), 0.25);
  // The best t is the lowest score: no lower score to go halfway to.
  EXPECT_DOUBLE_EQ(youdenThreshold({1, 0}, {0.2, 0.9}), 0.2);  // J: -1 at 0.9, 0 at 0.2
}

TEST(Youden, TiesGoToTheHighestThreshold) {
  // Negatives 0.2, 0.6; positives 0.4, 0.8: J = 1/2 at t = 0.8 and at t = 0.4.
  EXPECT_DOUBLE_EQ(youdenThreshold({0, 1, 0, 1}, {0.2, 0.4, 0.6, 0.8}), 0.7);
  // Tied scores are one candidate: t = 0.9: J = 1/2; t = 0.5: 1 - 1/2; t = 0.1: 0.
  EXPECT_DOUBLE_EQ(youdenThreshold({0, 1, 1, 0}, {0.5, 0.5, 0.9, 0.1}), 0.7);
}

TEST(Youden, OneClassIsNaNAndNaNScoresAreLeftOut) {
  EXPECT_TRUE(std::isnan(youdenThreshold({1, 1, 1}, {0.2, 0.4, 0.6})));
  EXPECT_TRUE(std::isnan(youdenThreshold({}, {})));
  const double nan = std::nan("");
  EXPECT_DOUBLE_EQ(youdenThreshold({0, 1, 1, 0}, {0.1, nan, 0.6, nan}), 0.35);
  EXPECT_TRUE(std::isnan(youdenThreshold({0, 1}, {0.1, nan})));
  EXPECT_THROW(youdenThreshold({0, 1}, {0.5}), std::invalid_argument);
}

TEST(QuantileLinear, MatchesNumpyDefault) {
  // numpy.quantile([0.1, 0.9, 0.4, 0.8, 0.2], q): sorted 0.1 0.2 0.4 0.8 0.9, h = 4q.
  const std::vector<double> v{0.1, 0.9, 0.4, 0.8, 0.2};
  EXPECT_NEAR(quantileLinear(v, 0.9), 0.86, 1e-12);  // h = 3.6: 0.8 + 0.6 * 0.1
  EXPECT_NEAR(quantileLinear(v, 0.3), 0.24, 1e-12);  // h = 1.2: 0.2 + 0.2 * 0.2
  EXPECT_DOUBLE_EQ(quantileLinear(v, 0.5), 0.4);
  EXPECT_DOUBLE_EQ(quantileLinear(v, 0.75), 0.8);
  EXPECT_DOUBLE_EQ(quantileLinear(v, 1.0), 0.9);
  EXPECT_DOUBLE_EQ(quantileLinear(v, 0.0), 0.1);
  EXPECT_NEAR(quantileLinear({0.05, 0.1, 0.3, 0.7}, 0.9), 0.58, 1e-12);  // h = 2.7
  EXPECT_DOUBLE_EQ(quantileLinear({0.3}, 0.9), 0.3);
  EXPECT_TRUE(std::isnan(quantileLinear({}, 0.5)));
}

// 2n samples, alternating labels; positives 0.3, 0.35, ..., negatives 0, 0.05, ...: overlapping.
void overlapping(int n, int copies, std::vector<int>* labels, std::vector<double>* scores) {
  for (int c = 0; c < copies; ++c)
    for (int i = 0; i < 2 * n; ++i) {
      labels->push_back(i % 2);
      scores->push_back((i % 2 ? 0.3 : 0.0) + 0.05 * (i / 2));
    }
}

TEST(BootstrapAucCi, ContainsTheAucAndIsDeterministicBySeed) {
  std::vector<int> y;
  std::vector<double> s;
  overlapping(10, 1, &y, &s);
  const AucCi a = bootstrapAucCi(y, s, 1000, 42);
  EXPECT_DOUBLE_EQ(a.auc, rocAuc(y, s));
  EXPECT_EQ(a.reps, 1000);
  EXPECT_LT(a.lo, a.auc);
  EXPECT_GT(a.hi, a.auc);
  EXPECT_GE(a.lo, 0.0);
  EXPECT_LE(a.hi, 1.0);
  const AucCi again = bootstrapAucCi(y, s, 1000, 42);
  EXPECT_EQ(again.lo, a.lo);
  EXPECT_EQ(again.hi, a.hi);
  const AucCi other = bootstrapAucCi(y, s, 1000, 43);
  EXPECT_TRUE(other.lo != a.lo || other.hi != a.hi);
  // A lower level gives a narrower interval from the same resamples.
  const AucCi half = bootstrapAucCi(y, s, 1000, 42, 0.5);
  EXPECT_GT(half.lo, a.lo);
  EXPECT_LT(half.hi, a.hi);
}

TEST(BootstrapAucCi, NarrowsWithMoreSamples) {
  std::vector<int> y1, y10;
  std::vector<double> s1, s10;
  overlapping(10, 1, &y1, &s1);
  overlapping(10, 10, &y10, &s10);  // the same data ten times: same AUC, ten times the samples
  const AucCi small = bootstrapAucCi(y1, s1, 1000, 7);
  const AucCi large = bootstrapAucCi(y10, s10, 1000, 7);
  EXPECT_DOUBLE_EQ(small.auc, large.auc);
  EXPECT_LT(large.hi - large.lo, 0.5 * (small.hi - small.lo));
}

TEST(BootstrapAucCi, PerfectSeparationOneClassAndRedraws) {
  const AucCi perfect = bootstrapAucCi({0, 0, 0, 1, 1, 1}, {0.1, 0.2, 0.3, 0.7, 0.8, 0.9}, 200, 1);
  EXPECT_EQ(perfect.auc, 1.0);
  EXPECT_EQ(perfect.lo, 1.0);
  EXPECT_EQ(perfect.hi, 1.0);
  const AucCi one = bootstrapAucCi({1, 1, 1}, {0.2, 0.4, 0.6}, 200, 1);
  EXPECT_EQ(one.auc, -1);
  EXPECT_EQ(one.lo, -1);
  EXPECT_EQ(one.reps, 0);
  // One positive in ten: about a third of the resamples hold no positive and are drawn again.
  const AucCi rare = bootstrapAucCi({0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
                                    {.1, .2, .3, .4, .5, .6, .7, .8, .9, .65}, 500, 3);
  EXPECT_EQ(rare.reps, 500);
  EXPECT_NEAR(rare.auc, 6.0 / 9, 1e-12);
  EXPECT_THROW(bootstrapAucCi({0, 1}, {0.5}), std::invalid_argument);
  EXPECT_THROW(bootstrapAucCi({0, 1}, {0.1, 0.5}, 0), std::invalid_argument);
  EXPECT_THROW(bootstrapAucCi({0, 1}, {0.1, 0.5}, 100, 0, 1.0), std::invalid_argument);
}

TEST(Kappa, QuadraticWeights) {
  // Hand-computed: observed disagreement 2, expected 22/4 -> 1 - 2/5.5.
  EXPECT_NEAR(quadraticKappa(fromPairs(3, {0, 1, 2, 2}, {0, 2, 2, 1})), 1 - 2 / 5.5, 1e-12);
  EXPECT_DOUBLE_EQ(quadraticKappa(fromPairs(3, {0, 1, 2}, {0, 1, 2})), 1.0);
  // Binary quadratic kappa equals unweighted kappa: po = 0.75, pe = 0.5 -> 0.5.
  EXPECT_NEAR(quadraticKappa(fromPairs(2, {0, 1, 1, 0, 1, 1, 0, 0}, {0, 1, 0, 0, 1, 1, 1, 0})), 0.5,
              1e-12);
  // Complete reversal on 3 ordered classes is worse than chance.
  EXPECT_LT(quadraticKappa(fromPairs(3, {0, 2}, {2, 0})), 0);
  EXPECT_EQ(quadraticKappa(ConfusionMatrix(3)), 0);
}

TEST(Metrics, JsonHasEveryKey) {
  auto cm = fromPairs(2, {0, 1, 1, 0}, {0, 1, 0, 0});
  Metrics m = Metrics::compute(cm, {0, 1, 1, 0}, {0.2, 0.9, 0.4, 0.1});
  std::string json = m.toJson();
  for (const char* key :
       {"accuracy", "tp", "tn", "fp", "fn", "tpr", "tnr", "fnr", "fpr", "precision", "recall",
        "f1", "support", "macro_precision", "macro_recall", "macro_f1", "weighted_precision",
        "weighted_recall", "weighted_f1", "roc_auc", "kappa_quadratic", "confusion"})
    EXPECT_NE(json.find("\"" + std::string(key) + "\":"), std::string::npos) << key;
  EXPECT_NE(json.find("\"accuracy\":0.75"), std::string::npos) << json;
  EXPECT_NE(json.find("\"roc_auc\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"confusion\":[[2,0],[1,1]]"), std::string::npos) << json;
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  EXPECT_NE(Metrics::compute(cm).toJson().find("\"roc_auc\":null"), std::string::npos);
}

// numpy: mean([1, 2, 4]) = 7/3, std(ddof=1) = sqrt(7/3); a fold without an AUC (NaN) is left out.
TEST(MeanSd, SampleSdOfTheFiniteValues) {
  const auto [m, sd] = meanSd({1.0, NAN, 2.0, 4.0});
  EXPECT_DOUBLE_EQ(m, 7.0 / 3.0);
  EXPECT_DOUBLE_EQ(sd, std::sqrt(7.0 / 3.0));
  EXPECT_EQ(meanSd({0.5}), std::make_pair(0.5, 0.0));
  EXPECT_TRUE(std::isnan(meanSd({NAN}).first));
  EXPECT_TRUE(std::isnan(meanSd({}).second));
}

}  // namespace
}  // namespace slidetrain
