// Fold assignment of `slidetrain cv` and `slidetrain mil` (mil.folds): patients stay together,
// test slides stay out, seeded, every fold non-empty and labels spread over folds; a bad fold
// count names the key that asked for it.
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "src/config/Errors.h"
#include "src/data/Folds.h"

namespace slidetrain {
namespace {

wsi::Cohort cohort() {
  wsi::Cohort c;
  c.classes = {"a", "b"};
  for (int i = 0; i < 12; ++i) {
    wsi::CohortEntry e;
    e.slideId = "s" + std::to_string(i);
    e.labelIndex = i % 2;
    e.label = c.classes[i % 2];
    e.patientId = i < 4 ? "p" + std::to_string(i / 2) : "";  // s0+s1 and s2+s3 share a patient
    e.split = i == 11 ? "test" : "";
    c.slides.push_back(e);
  }
  return c;
}

TEST(Folds, GroupPatientsAreSeededAndStratified) {
  const auto c = cohort();
  const auto f = assignFolds(c, 3, 7, "cv.folds");
  EXPECT_EQ(f[11], -1);
  EXPECT_EQ(f[0], f[1]);
  EXPECT_EQ(f[2], f[3]);
  std::map<int, std::set<int>> labelsPerFold;
  for (size_t i = 0; i < 11; ++i) {
    ASSERT_GE(f[i], 0);
    ASSERT_LT(f[i], 3);
    labelsPerFold[f[i]].insert(c.slides[i].labelIndex);
  }
  EXPECT_EQ(labelsPerFold.size(), 3u);
  for (const auto& [fold, labels] : labelsPerFold) EXPECT_EQ(labels.size(), 2u) << "fold " << fold;
  EXPECT_EQ(f, assignFolds(c, 3, 7, "cv.folds"));
  bool differs = false;
  for (uint64_t s = 8; s < 16 && !differs; ++s) differs = assignFolds(c, 3, s, "cv.folds") != f;
  EXPECT_TRUE(differs);
  EXPECT_THROW(assignFolds(c, 10, 7, "cv.folds"), ConfigError);  // 9 groups outside test
}

/// The message starts with the key the caller passed, so `slidetrain mil` errors name mil.folds.
TEST(Folds, BadFoldCountNamesTheKey) {
  const auto c = cohort();
  for (int folds : {10, 1, 0}) {
    try {
      assignFolds(c, folds, 7, "mil.folds");
      ADD_FAILURE() << folds << " folds accepted";
    } catch (const ConfigError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("mil.folds: ", 0), 0u) << e.what();
    }
  }
  EXPECT_NO_THROW(assignFolds(c, 9, 7, "mil.folds"));  // one group per fold
}

/// Every non-test slide gets a fold whatever its split was (train, val or none): mil.folds
/// cross-validates the train and val slides together.
TEST(Folds, TrainAndValSlidesAreDealtTogether) {
  auto c = cohort();
  for (size_t i = 0; i < 11; ++i) c.slides[i].split = i % 3 == 0 ? "val" : "train";
  const auto f = assignFolds(c, 3, 7, "mil.folds");
  EXPECT_EQ(f, assignFolds(cohort(), 3, 7, "mil.folds"));
}

}  // namespace
}  // namespace slidetrain
