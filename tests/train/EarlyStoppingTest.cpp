// The monitored metric: direction resolved after the val_* -> train_* fallback, and the
// improvement/patience rules on scripted metric sequences.
#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

#include "src/train/EarlyStopping.h"

namespace slidetrain {
namespace {

/// Runs the trainer's rules over a scripted sequence: returns (best epoch, stop epoch or 0).
std::pair<int, int> script(const std::string& mode, const std::vector<double>& values,
                           int64_t patience, double minDelta = 0) {
  double best = std::numeric_limits<double>::quiet_NaN();
  int bestEpoch = 0;
  int64_t bad = 0;
  for (size_t e = 0; e < values.size(); ++e) {
    if (isImprovement(mode, values[e], best, minDelta)) {
      best = values[e];
      bestEpoch = static_cast<int>(e) + 1;
      bad = 0;
    } else {
      ++bad;
    }
    if (shouldStop(patience, bad)) return {bestEpoch, static_cast<int>(e) + 1};
  }
  return {bestEpoch, 0};
}

TEST(EarlyStopping, MinAndMaxOnScriptedSequences) {
  const std::vector<double> loss{1.0, 0.8, 0.9, 0.85, 0.95, 0.7};
  EXPECT_EQ(script("min", loss, 2), std::make_pair(2, 4));  // best 0.8 at 2, two bad epochs -> 4
  EXPECT_EQ(script("min", loss, 0), std::make_pair(6, 0));  // never stops; 0.7 is best
  const std::vector<double> auc{0.6, 0.7, 0.65, 0.72, 0.71, 0.70};
  EXPECT_EQ(script("max", auc, 2), std::make_pair(4, 6));
  EXPECT_EQ(script("max", auc, 2, 0.05), std::make_pair(2, 4));  // 0.72 is not 0.05 better
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(script("max", {nan, 0.5, nan}, 3), std::make_pair(2, 0));  // NaN never improves
}

TEST(EarlyStopping, DirectionIsResolvedAfterTheFallback) {
  // val_auc with mode max and no validation split: the run monitors train_loss, which must go
  // down - keeping "max" would keep the checkpoint with the HIGHEST training loss.
  Monitor m = resolveMonitor("val_auc", "max", /*haveValidation=*/false);
  EXPECT_EQ(m.metric, "train_loss");
  EXPECT_EQ(m.mode, "min");
  EXPECT_NE(m.note.find("train.early_stopping.mode"), std::string::npos) << m.note;
  m = resolveMonitor("val_accuracy", "max", false);
  EXPECT_EQ(m.metric, "train_accuracy");
  EXPECT_EQ(m.mode, "max");
  EXPECT_NE(m.note.find("needs a validation split"), std::string::npos) << m.note;
  m = resolveMonitor("val_loss", "auto", false);
  EXPECT_EQ(m.metric, "train_loss");
  EXPECT_EQ(m.mode, "min");
  // With validation, explicit modes stand and auto follows the metric.
  m = resolveMonitor("val_auc", "max", true);
  EXPECT_EQ(m.metric, "val_auc");
  EXPECT_EQ(m.mode, "max");
  EXPECT_TRUE(m.note.empty());
  EXPECT_EQ(resolveMonitor("val_loss", "auto", true).mode, "min");
  EXPECT_EQ(resolveMonitor("val_kappa", "auto", true).mode, "max");
  EXPECT_EQ(resolveMonitor("train_loss", "max", true).mode, "max");  // explicit and meant
}

}  // namespace
}  // namespace slidetrain
