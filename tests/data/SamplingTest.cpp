// Epoch sample lists: per-slide caps and class balance are seeded, deterministic, and have the
// promised counts; without options the order is exactly dist::globalOrder.
#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "distributed/Sampler.h"
#include "src/data/Sampling.h"

namespace slidetrain {
namespace {

/// Slide 0: 50 patches (40 of class 0, 10 of class 1); slide 1: 5 of class 1; slide 2: 20 of 0.
std::vector<wsi::PatchRequest> samples() {
  std::vector<wsi::PatchRequest> s;
  auto add = [&](int slide, int label, int n) {
    for (int i = 0; i < n; ++i) {
      wsi::PatchRequest r;
      r.slide = slide;
      r.label = label;
      r.id = static_cast<int64_t>(s.size());
      s.push_back(r);
    }
  };
  add(0, 0, 40);
  add(0, 1, 10);
  add(1, 1, 5);
  add(2, 0, 20);
  return s;
}

TEST(Sampling, NoOptionsIsTheGlobalOrder) {
  const auto s = samples();
  EXPECT_EQ(epochOrder(s, {}, 9, 2), dist::globalOrder(static_cast<int64_t>(s.size()), 9, 2));
}

TEST(Sampling, PerSlideCap) {
  const auto s = samples();
  SamplingOptions o;
  o.maxPatchesPerSlide = 10;
  const auto a = epochSampleList(s, o, 1, 0);
  std::map<int, int> perSlide;
  for (int64_t i : a) ++perSlide[s[i].slide];
  EXPECT_EQ(perSlide[0], 10);
  EXPECT_EQ(perSlide[1], 5);
  EXPECT_EQ(perSlide[2], 10);
  EXPECT_TRUE(std::adjacent_find(a.begin(), a.end()) == a.end());  // sorted, no repeats
  EXPECT_EQ(a, epochSampleList(s, o, 1, 0));                         // deterministic
  EXPECT_NE(a, epochSampleList(s, o, 1, 1));                         // new subset per epoch
  EXPECT_NE(a, epochSampleList(s, o, 2, 0));                         // and per seed
  const auto order = epochOrder(s, o, 1, 0);
  auto sorted = order;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, a);  // the order is a permutation of the list
}

TEST(Sampling, ClassBalanced) {
  const auto s = samples();  // 60 of class 0, 15 of class 1
  SamplingOptions o;
  o.classBalanced = true;
  const auto a = epochSampleList(s, o, 4, 3);
  ASSERT_EQ(a.size(), s.size());
  std::map<int, int> perClass;
  std::map<int64_t, int> uses;
  for (int64_t i : a) ++perClass[s[i].label], ++uses[i];
  EXPECT_EQ(perClass[0], 38);  // 75 / 2, remainder to the lowest class
  EXPECT_EQ(perClass[1], 37);
  for (const auto& [i, n] : uses) {
    if (s[i].label == 0) EXPECT_EQ(n, 1);  // subsampled without repeats
    else EXPECT_GE(n, 2);                  // 37 of 15: every one at least twice
  }
  EXPECT_EQ(a, epochSampleList(s, o, 4, 3));
  EXPECT_NE(a, epochSampleList(s, o, 4, 4));

  o.maxPatchesPerSlide = 10;  // cap first (25 left: 20 of class 0, 5... ), then balance
  const auto b = epochSampleList(s, o, 4, 3);
  EXPECT_EQ(b.size(), 25u);
  std::map<int, int> pc;
  for (int64_t i : b) ++pc[s[i].label];
  EXPECT_EQ(pc[0], 13);
  EXPECT_EQ(pc[1], 12);
}

}  // namespace
}  // namespace slidetrain
