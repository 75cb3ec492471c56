#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "src/eval/Aggregate.h"
#include "src/data/SplitData.h"

using slidetrain::poolScores;

TEST(Aggregate, MeanMaxTopK) {
  const std::vector<double> s{0.1, 0.9, 0.4, 0.8, 0.2};
  EXPECT_DOUBLE_EQ(poolScores(s, "mean"), 0.48);
  EXPECT_DOUBLE_EQ(poolScores(s, "max"), 0.9);
  EXPECT_DOUBLE_EQ(poolScores(s, "topk", 2), 0.85);
  EXPECT_DOUBLE_EQ(poolScores(s, "topk", 50), 0.48);  // k larger than the list = mean
}

TEST(Aggregate, NaNsIgnoredEmptyIsNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_DOUBLE_EQ(poolScores({nan, 0.5, nan}, "mean"), 0.5);
  EXPECT_TRUE(std::isnan(poolScores({}, "max")));
  EXPECT_THROW(poolScores({0.1}, "median"), std::invalid_argument);
}

TEST(SplitData, SharesCoverEveryItemOnce) {
  for (int world : {1, 2, 3, 4, 7}) {
    for (int64_t n : {0, 1, 5, 64, 101}) {
      int64_t next = 0;
      for (int r = 0; r < world; ++r) {
        auto [b, e] = slidetrain::shareOf(n, r, world);
        EXPECT_EQ(b, next);
        EXPECT_LE(e - b, (n + world - 1) / world);
        next = e;
      }
      EXPECT_EQ(next, n);
    }
  }
}

TEST(Aggregate, DecideSlideBinaryThresholdAndMulticlassArgmax) {
  slidetrain::SlidePooling pool;
  pool.method = "max";
  pool.threshold = 0.6;
  double score = 0;
  // Binary: class-1 pooled score against the threshold.
  EXPECT_EQ(slidetrain::decideSlide({{0.9, 0.5}, {0.1, 0.5}}, pool, &score), 0);
  EXPECT_DOUBLE_EQ(score, 0.5);
  EXPECT_EQ(slidetrain::decideSlide({{0.3, 0.9}, {0.7, 0.1}}, pool, &score), 1);
  EXPECT_DOUBLE_EQ(score, 0.7);
  // Three classes: the highest pooled class wins; the score is that class's pooled value.
  pool.method = "mean";
  EXPECT_EQ(slidetrain::decideSlide({{0.2, 0.2}, {0.3, 0.3}, {0.5, 0.5}}, pool, &score), 2);
  EXPECT_DOUBLE_EQ(score, 0.5);
}

TEST(Aggregate, QuantileMatchesNumpyLinear) {
  // numpy.quantile([0.1, 0.9, 0.4, 0.8, 0.2], q): sorted 0.1 0.2 0.4 0.8 0.9, h = 4q.
  const std::vector<double> s{0.1, 0.9, 0.4, 0.8, 0.2};
  EXPECT_NEAR(poolScores(s, "quantile", 5, 0.9), 0.86, 1e-12);  // 0.8 + 0.6 * (0.9 - 0.8)
  EXPECT_NEAR(poolScores(s, "quantile"), 0.86, 1e-12);          // q defaults to 0.9
  EXPECT_DOUBLE_EQ(poolScores(s, "quantile", 5, 0.5), 0.4);     // the median
  EXPECT_NEAR(poolScores(s, "quantile", 5, 0.3), 0.24, 1e-12);  // 0.2 + 0.2 * (0.4 - 0.2)
  EXPECT_DOUBLE_EQ(poolScores(s, "quantile", 5, 1.0), 0.9);     // q = 1 is max
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_DOUBLE_EQ(poolScores({nan, 0.2, 0.6}, "quantile", 5, 0.5), 0.4);  // NaNs ignored
  EXPECT_TRUE(std::isnan(poolScores({nan}, "quantile")));
}

TEST(Aggregate, VoteCountsEachPatchsArgmax) {
  slidetrain::SlidePooling pool;
  pool.method = "vote";
  pool.threshold = 0.5;
  double score = 0;
  // Binary: share of patches voting class 1. Mean pooling would call this slide positive
  // (mean of class 1 = 0.5625); three of four patches vote class 0.
  EXPECT_EQ(slidetrain::decideSlide({{0.55, 0.55, 0.55, 0.1}, {0.45, 0.45, 0.45, 0.9}}, pool, &score), 0);
  EXPECT_DOUBLE_EQ(score, 0.25);
  // Two of four: a tied vote reaches the threshold 0.5.
  EXPECT_EQ(slidetrain::decideSlide({{0.9, 0.3, 0.2, 0.6}, {0.1, 0.7, 0.8, 0.4}}, pool, &score), 1);
  EXPECT_DOUBLE_EQ(score, 0.5);
  // A patch with NaN probabilities (skipped) does not vote.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(slidetrain::decideSlide({{0.9, nan, 0.2}, {0.1, nan, 0.8}}, pool, &score), 1);
  EXPECT_DOUBLE_EQ(score, 0.5);
  // Three classes: the most voted class and its share; argmax 0, 1, 2, 0.
  EXPECT_EQ(slidetrain::decideSlide({{0.5, 0.1, 0.2, 0.6}, {0.3, 0.8, 0.1, 0.3}, {0.2, 0.1, 0.7, 0.1}},
                                    pool, &score), 0);
  EXPECT_DOUBLE_EQ(score, 0.5);
  // Tied votes (0, 1, 1, 0) go to the lower class index.
  EXPECT_EQ(slidetrain::decideSlide({{0.5, 0.1, 0.2, 0.6}, {0.3, 0.8, 0.7, 0.3}, {0.2, 0.1, 0.1, 0.1}},
                                    pool, &score), 0);
  EXPECT_DOUBLE_EQ(score, 0.5);
  EXPECT_DOUBLE_EQ(slidetrain::poolClass({{0.5, 0.1, 0.2, 0.6}, {0.3, 0.8, 0.7, 0.3}, {0.2, 0.1, 0.1, 0.1}},
                                         1, pool), 0.5);
  EXPECT_TRUE(std::isnan(slidetrain::poolClass({{nan}, {nan}}, 1, pool)));
  // vote needs every class's probabilities.
  EXPECT_THROW(poolScores({0.1, 0.7}, "vote"), std::invalid_argument);
}

TEST(Aggregate, DecideSlideQuantile) {
  slidetrain::SlidePooling pool;
  pool.method = "quantile";
  pool.quantile = 0.5;
  pool.threshold = 0.5;
  double score = 0;
  EXPECT_EQ(slidetrain::decideSlide({{0.9, 0.4, 0.2}, {0.1, 0.6, 0.8}}, pool, &score), 1);
  EXPECT_DOUBLE_EQ(score, 0.6);
  pool.quantile = 0.25;  // h = 0.5: 0.1 + 0.5 * (0.6 - 0.1)
  EXPECT_EQ(slidetrain::decideSlide({{0.9, 0.4, 0.2}, {0.1, 0.6, 0.8}}, pool, &score), 0);
  EXPECT_DOUBLE_EQ(score, 0.35);
}
