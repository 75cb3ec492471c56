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
