// Synthetic cohort: files OpenSlide opens as generic-tiff with the recorded mpp, sensible tissue,
// tumour annotations over visibly different tissue, and byte-identical output for a seed; the
// val split; the weak-label mode (small scattered tumour, no annotation files).
#include "wsi/SynthCohort.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

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

double d0Area(const SynthOptions& o) { return double(o.width) * o.height; }

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

uint64_t fnv1a(const std::vector<uint8_t>& bytes, uint64_t h = 0xcbf29ce484222325ull) {
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

TEST(SynthCohortTest, DefaultModeWritesWhatItWroteBefore) {
  // The cohort text of a 4-slide cohort made before synth.tumor_tissue_share and synth.val_fraction
  // existed (commit ea0dea0). It pins label and split placement and the tumour geometry, which
  // draw on the same random stream as the slide pixels; the pixels themselves depend on the
  // libvips and libjpeg versions, so the demo cohort's TIFF bytes were compared by hand.
  test::TempDir dir;
  SynthOptions o = small(7);
  o.numSlides = 4;
  const std::vector<SynthSlide> slides = synthesizeCohort(dir.path(), o);
  uint64_t h = fnv1a(test::readBytes(dir.file("cohort.csv")));
  for (const auto& s : slides) h = fnv1a(test::readBytes(dir.file("annotations/" + s.slideId + ".geojson")), h);
  EXPECT_EQ(h, 0xeb8230851b4662f0ull);
}

TEST(SynthCohortTest, ValFractionMakesAStratifiedValSplit) {
  test::TempDir dir;
  SynthOptions o = small(5);
  o.numSlides = 8, o.width = 256, o.height = 256;
  o.testFraction = 0.25, o.valFraction = 0.25;
  const std::vector<SynthSlide> slides = synthesizeCohort(dir.path(), o);
  const Cohort cohort = Cohort::read(dir.file("cohort.csv"));
  for (const char* split : {"val", "test"}) {
    SCOPED_TRACE(split);
    const auto idx = cohort.indicesOfSplit(split);
    ASSERT_EQ(idx.size(), 2u);  // one of each class
    EXPECT_NE(cohort.slides[idx[0]].label, cohort.slides[idx[1]].label);
  }
  EXPECT_EQ(cohort.indicesOfSplit("train").size(), 4u);
  for (size_t i = 0; i < slides.size(); ++i) EXPECT_EQ(slides[i].split, cohort.slides[i].split);
  o.valFraction = 0.75;  // no slide left to train on
  EXPECT_THROW(o.validate(), std::invalid_argument);
}

/// Share of the tissue patches (16 px, level 0) whose centre lies in a tumour region, and the
/// mean brightness of tumour and of other tissue patches.
struct TumourMeasure {
  double share = 0, tumourBrightness = 0, otherBrightness = 0, darkestOther = 255;
  int patches = 0;
};

TumourMeasure measureTumour(const std::string& path, const Annotations& tumour) {
  auto slide = Slide::open(path);
  TissueMaskOptions mo;
  mo.thumbnailMaxSide = 512;
  const TissueMask mask = TissueMask::compute(*slide, mo);
  PatchIndexOptions po;
  po.size = 16, po.minTissue = 0.5;
  const PatchIndex index =
      PatchIndex::build(*slide, mask, po, 0, &tumour, [](const std::string&) { return 1; });
  const auto d = slide->levelDimensions(0);
  const RgbImage whole = slide->readRegion(0, 0, 0, d[0], d[1]);
  TumourMeasure m;
  double sum[2] = {0, 0};
  int count[2] = {0, 0};
  for (const auto& p : index.patches) {
    double s = 0;
    for (int y = 0; y < 16; ++y) {
      const uint8_t* row = whole.at(int(p.x), int(p.y) + y);
      for (int x = 0; x < 16 * 3; ++x) s += row[x];
    }
    s /= 16 * 16 * 3;
    sum[p.label] += s, ++count[p.label];
    if (p.label == 0) m.darkestOther = std::min(m.darkestOther, s);
  }
  m.patches = count[0] + count[1];
  m.share = m.patches ? double(count[1]) / m.patches : 0;
  m.tumourBrightness = count[1] ? sum[1] / count[1] : 0;
  m.otherBrightness = count[0] ? sum[0] / count[0] : 0;
  return m;
}

TEST(SynthCohortTest, WeakLabelSlidesHoldAFewSmallTumourRegionsOfTheAskedShare) {
  test::TempDir dir;
  SynthOptions o = small(21);
  o.numSlides = 6, o.width = 1536, o.height = 1152;
  o.tumorTissueShare = 0.05;
  const std::vector<SynthSlide> slides = synthesizeCohort(dir.path(), o);
  ASSERT_EQ(slides.size(), 6u);
  double normalDarkest = 255, tumourMean = 0;
  int tumourSlides = 0;
  for (const auto& s : slides) {
    SCOPED_TRACE(s.slideId);
    const TumourMeasure m = measureTumour(dir.file("slides/" + s.slideId + ".tiff"), s.tumour);
    ASSERT_GT(m.patches, 500);
    if (s.label == "normal") {
      EXPECT_TRUE(s.tumour.empty());
      normalDarkest = std::min(normalDarkest, m.darkestOther);
      continue;
    }
    ++tumourSlides;
    // Several regions, none holding most of the tumour (scattered, not one blob).
    ASSERT_GE(s.tumour.polygons().size(), 3u);
    double total = 0, largest = 0;
    for (const auto& p : s.tumour.polygons()) total += p.area(), largest = std::max(largest, p.area());
    EXPECT_LT(largest, 0.5 * total);
    // About 5 % of the tissue (the slide is about half tissue, so about 2.5 % of the slide).
    EXPECT_NEAR(m.share, 0.05, 0.015);
    EXPECT_LT(total, 0.05 * d0Area(o));
    // Today's tumour appearance: denser, darker nuclei.
    EXPECT_LT(m.tumourBrightness + 15, m.otherBrightness);
    tumourMean += m.tumourBrightness;
  }
  ASSERT_EQ(tumourSlides, 3);
  // Normal slides hold no tumour-like tissue: none of their patches is as dark as tumour.
  EXPECT_GT(normalDarkest, tumourMean / tumourSlides + 5);
}

double spread(const std::vector<double>& v) {  // sample standard deviation
  double m = 0, q = 0;
  for (double x : v) m += x / double(v.size());
  for (double x : v) q += (x - m) * (x - m);
  return std::sqrt(q / double(v.size() - 1));
}

// synth.slide_variation: each slide its own stain and nuclei, benign look-alike regions on normal
// slides too, and the weak-label tumour share varies; variation 0 leaves every slide alike.
TEST(SynthCohortTest, SlideVariationGivesEachSlideItsOwnLookAndBenignLookAlikes) {
  SynthOptions o = small(21);
  o.numSlides = 6, o.width = 1536, o.height = 1152;
  o.tumorTissueShare = 0.05;
  std::vector<double> alike, varied, shares;
  bool normalWithLookAlike = false;
  for (double variation : {0.0, 1.0}) {
    test::TempDir dir;
    o.slideVariation = variation;
    const std::vector<SynthSlide> slides = synthesizeCohort(dir.path(), o);
    for (const auto& s : slides) {
      SCOPED_TRACE(s.slideId + " variation " + std::to_string(variation));
      const TumourMeasure m = measureTumour(dir.file("slides/" + s.slideId + ".tiff"), s.tumour);
      (variation > 0 ? varied : alike).push_back(m.otherBrightness);
      if (variation == 0) {
        EXPECT_EQ(s.lookAlikeRegions, 0);
        continue;
      }
      if (s.label == "tumor") shares.push_back(m.share);
      if (s.label == "normal" && s.lookAlikeRegions > 0) {
        normalWithLookAlike = true;
        // Its look-alike tissue is much darker than the rest of it, as tumour is.
        EXPECT_LT(m.darkestOther, m.otherBrightness - 40);
      }
    }
  }
  EXPECT_GT(spread(varied), 3 * spread(alike)) << "slides do not differ in their look";
  EXPECT_TRUE(normalWithLookAlike) << "no normal slide drew a look-alike region";
  EXPECT_GT(*std::max_element(shares.begin(), shares.end()) - *std::min_element(shares.begin(), shares.end()),
            0.01);
  o.slideVariation = 1.5;
  EXPECT_THROW(o.validate(), std::invalid_argument);
}

TEST(SynthCohortTest, WeakLabelModeWritesNoAnnotationsAndRemovesStaleOnes) {
  test::TempDir dir;
  SynthOptions o = small(3);
  o.numSlides = 2, o.width = 512, o.height = 384;
  synthesizeCohort(dir.path(), o);  // a default cohort first: its annotations must not survive
  ASSERT_TRUE(std::filesystem::exists(dir.file("annotations/synth_000.geojson")));
  o.tumorTissueShare = 0.05;
  const std::vector<SynthSlide> slides = synthesizeCohort(dir.path(), o);
  EXPECT_FALSE(std::filesystem::exists(dir.file("annotations")));
  for (const auto& s : slides) EXPECT_EQ(s.tumour.empty(), s.label == "normal") << s.slideId;
}

TEST(SynthCohortTest, TumourTissueShareOutside0To1IsRefused) {
  SynthOptions o = small(1);
  for (double bad : {-0.01, 1.5, std::nan("")}) {
    o.tumorTissueShare = bad;
    try {
      o.validate();
      ADD_FAILURE() << bad << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("tumorTissueShare"), std::string::npos) << e.what();
    }
  }
  o.tumorTissueShare = 1;
  EXPECT_NO_THROW(o.validate());
}

}  // namespace
}  // namespace slidetrain::wsi
