// Synthetic cohort: files OpenSlide opens as generic-tiff with the recorded mpp, sensible tissue,
// tumour annotations over visibly different tissue, and byte-identical output for a seed.
#include "wsi/SynthCohort.h"

#include <gtest/gtest.h>

#include "tests/wsi/WsiTestUtil.h"
#include "wsi/Annotations.h"
#include "wsi/Cohort.h"
#include "wsi/PatchIndex.h"
#include "wsi/Slide.h"
#include "wsi/TissueMask.h"

namespace slidetrain::wsi {
namespace {

SynthOptions small(uint64_t seed) {
  SynthOptions o;
  o.numSlides = 2;
  o.width = 1024;
  o.height = 768;
  o.mpp = 0.5;
  o.tumorFraction = 0.5;
  o.testFraction = 0.5;
  o.seed = seed;
  return o;
}

double meanBrightness(const RgbImage& img) {
  double s = 0;
  for (uint8_t v : img.pixels) s += v;
  return s / double(img.pixels.size());
}

TEST(SynthCohortTest, WritesOpenSlideReadableLabelledCohort) {
  test::TempDir dir;
  synthesizeCohort(dir.path(), small(7));
  const Cohort cohort = Cohort::read(dir.file("cohort.csv"));
  ASSERT_EQ(cohort.slides.size(), 2u);
  EXPECT_EQ(cohort.classes, (std::vector<std::string>{"normal", "tumor"}));
  EXPECT_EQ(cohort.indicesOfSplit("test").size(), 1u);
  for (const auto& entry : cohort.slides) {
    SCOPED_TRACE(entry.slideId);
    EXPECT_EQ(entry.path, dir.path() + "/slides/" + entry.slideId + ".tiff");
    auto slide = Slide::open(entry.path);
    EXPECT_EQ(slide->backend(), "openslide");
    EXPECT_EQ(slide->vendor(), "generic-tiff");
    EXPECT_EQ(slide->levelDimensions(0), (std::array<int64_t, 2>{1024, 768}));
    EXPECT_GE(slide->levelCount(), 3);
    ASSERT_TRUE(slide->mpp());
    EXPECT_NEAR(*slide->mpp(), 0.5, 1e-6);
    TissueMaskOptions mo;
    mo.thumbnailMaxSide = 256;
    const TissueMask mask = TissueMask::compute(*slide, mo);
    EXPECT_GT(mask.tissueFraction(), 0.15);
    EXPECT_LT(mask.tissueFraction(), 0.85);
    const Annotations ann =
        Annotations::readGeoJson(dir.path() + "/annotations/" + entry.slideId + ".geojson");
    if (entry.label == "normal") {
      EXPECT_TRUE(ann.empty());
      continue;
    }
    ASSERT_FALSE(ann.empty());
    EXPECT_EQ(ann.classNames(), (std::vector<std::string>{"tumor"}));
    // Tumour tissue is darker than normal tissue: compare 64-px patches over tissue.
    PatchIndexOptions po;
    po.size = 64, po.minTissue = 0.9;
    const PatchIndex index = PatchIndex::build(*slide, mask, po, 0, &ann,
                                               [](const std::string&) { return 1; });
    double sum[2] = {0, 0};
    int count[2] = {0, 0};
    for (const auto& p : index.patches) {
      sum[p.label] += meanBrightness(slide->readRegion(p.x, p.y, 0, 64, 64));
      ++count[p.label];
    }
    ASSERT_GT(count[0], 0);
    ASSERT_GT(count[1], 0);
    const double tumourShare = double(count[1]) / (count[0] + count[1]);
    EXPECT_GT(tumourShare, 0.1);
    EXPECT_LT(tumourShare, 0.6);
    EXPECT_LT(sum[1] / count[1] + 15, sum[0] / count[0]);
  }
}

TEST(SynthCohortTest, SameSeedSameBytesOtherSeedOtherBytes) {
  test::TempDir a, b, c;
  SynthOptions o = small(11);
  o.numSlides = 1;
  o.tumorFraction = 1;
  o.testFraction = 0;
  o.width = 512, o.height = 384;
  synthesizeCohort(a.path(), o);
  synthesizeCohort(b.path(), o);
  o.seed = 12;
  synthesizeCohort(c.path(), o);
  for (const char* f : {"slides/synth_000.tiff", "annotations/synth_000.geojson", "cohort.csv"})
    EXPECT_EQ(test::readBytes(a.file(f)), test::readBytes(b.file(f))) << f;
  EXPECT_NE(test::readBytes(a.file("slides/synth_000.tiff")),
            test::readBytes(c.file("slides/synth_000.tiff")));
  o.width = 10;
  EXPECT_THROW(synthesizeCohort(c.path(), o), std::invalid_argument);
}

TEST(SynthCohortTest, ValSplitIsStratifiedAndTakenFromTheTestSide) {
  // 8 slides, 4 per class. Test 0.5 (train: 2 per class) against test 0.25 + val 0.25: the
  // train slides stay the same, val and test hold one slide of each class and together the
  // former test slides.
  test::TempDir a, b;
  SynthOptions o = small(5);
  o.numSlides = 8;
  o.width = 256, o.height = 256;
  synthesizeCohort(a.path(), o);
  o.testFraction = 0.25, o.valFraction = 0.25;
  synthesizeCohort(b.path(), o);
  const Cohort before = Cohort::read(a.file("cohort.csv"));
  const Cohort after = Cohort::read(b.file("cohort.csv"));
  EXPECT_EQ(before.indicesOfSplit("val").size(), 0u);
  EXPECT_EQ(after.indicesOfSplit("train"), before.indicesOfSplit("train"));
  for (const char* split : {"val", "test"}) {
    SCOPED_TRACE(split);
    const auto idx = after.indicesOfSplit(split);
    ASSERT_EQ(idx.size(), 2u);
    EXPECT_NE(after.slides[idx[0]].label, after.slides[idx[1]].label);
    for (size_t i : idx) EXPECT_EQ(before.slides[i].split, "test");
  }
  o.testFraction = 0.5, o.valFraction = 0.75;
  EXPECT_THROW(o.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace slidetrain::wsi
