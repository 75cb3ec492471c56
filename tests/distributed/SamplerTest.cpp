// Sampler: world-size invariance of global batches, determinism, partial-batch split.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "distributed/Comm.h"
#include "distributed/Sampler.h"

using namespace slidetrain::dist;

TEST(Sampler, Splitmix64MatchesReferenceSequence) {
  // Reference values of splitmix64 seeded with 0 (Vigna's splitmix64.c).
  uint64_t s = 0;
  EXPECT_EQ(splitmix64(s), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(splitmix64(s), 0x6E789E6AA1B965F4ULL);
}

TEST(Sampler, MixSeedDependsOnEveryArgumentAndItsPosition) {
  std::set<uint64_t> seen{mixSeed(1), mixSeed(1, 2), mixSeed(2, 1), mixSeed(1, 2, 3),
                          mixSeed(1, 2, 3, 4), mixSeed(1, 2, 4, 3), mixSeed(0)};
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(mixSeed(7, 8, 9), mixSeed(7, 8, 9));
}

TEST(Sampler, GlobalOrderIsADeterministicPermutation) {
  const auto a = globalOrder(1000, 42, 3);
  EXPECT_EQ(a, globalOrder(1000, 42, 3));
  EXPECT_NE(a, globalOrder(1000, 42, 4));
  EXPECT_NE(a, globalOrder(1000, 43, 3));
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(1000);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(a, iota);  // actually shuffled
  EXPECT_TRUE(globalOrder(0, 1, 0).empty());
  EXPECT_EQ(globalOrder(1, 1, 0), std::vector<int64_t>{0});
}

TEST(Sampler, NumGlobalBatches) {
  EXPECT_EQ(numGlobalBatches(37, 8, true), 4);
  EXPECT_EQ(numGlobalBatches(37, 8, false), 5);
  EXPECT_EQ(numGlobalBatches(32, 8, false), 4);
  EXPECT_EQ(numGlobalBatches(0, 8, false), 0);
  EXPECT_THROW(numGlobalBatches(10, 0, false), DistError);
}

TEST(Sampler, UnionOfRankSlicesIsTheGlobalBatchForEveryWorldSize) {
  const int64_t n = 37, g = 8;
  const auto order = globalOrder(n, 7, 1);
  for (int world : {1, 2, 4}) {
    for (int64_t k = 0; k < numGlobalBatches(n, g, false); ++k) {
      std::vector<int64_t> joined;
      size_t smallest = SIZE_MAX, largest = 0;
      for (int r = 0; r < world; ++r) {
        const auto s = rankSliceOfBatch(order, g, k, r, world);
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
        joined.insert(joined.end(), s.begin(), s.end());
      }
      const int64_t end = std::min(n, (k + 1) * g);
      EXPECT_EQ(joined, std::vector<int64_t>(order.begin() + k * g, order.begin() + end))
          << "world " << world << " batch " << k;
      EXPECT_LE(largest - smallest, 1u);
    }
  }
}

TEST(Sampler, TrailingPartialBatchGivesExtrasToLowerRanks) {
  const auto order = globalOrder(13, 1, 0);  // last batch of 8 holds 5 samples
  const std::vector<size_t> expected{2, 1, 1, 1};
  for (int r = 0; r < 4; ++r) EXPECT_EQ(rankSliceOfBatch(order, 8, 1, r, 4).size(), expected[r]);
  const auto tiny = globalOrder(9, 1, 0);  // last batch holds 1 sample: ranks 1..3 get none
  EXPECT_EQ(rankSliceOfBatch(tiny, 8, 1, 0, 4).size(), 1u);
  EXPECT_TRUE(rankSliceOfBatch(tiny, 8, 1, 3, 4).empty());
}

TEST(Sampler, RejectsBadArguments) {
  const auto order = globalOrder(20, 1, 0);
  EXPECT_THROW(rankSliceOfBatch(order, 6, 0, 0, 4), DistError);  // 6 not divisible by 4
  EXPECT_THROW(rankSliceOfBatch(order, 8, 3, 0, 4), DistError);  // past the end
  EXPECT_THROW(rankSliceOfBatch(order, 8, 0, 4, 4), DistError);  // rank out of range
  EXPECT_THROW(rankSliceOfBatch(order, 8, -1, 0, 4), DistError);
}
