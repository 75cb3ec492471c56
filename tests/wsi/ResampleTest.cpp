// Resolution: level choice for a target mpp or magnification, exact-size resampled patches whose
// content matches a box-filtered reference, the missing-mpp error, and index grids at a target.
#include "wsi/Resample.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

#include "tests/wsi/WsiTestUtil.h"
#include "wsi/Errors.h"
#include "wsi/PatchIndex.h"
#include "wsi/SynthCohort.h"

namespace slidetrain::wsi {
namespace {

// One synthetic slide (1024x768, mpp 0.5, pyramid 1x 2x 4x ...), made once for the suite.
class ResampleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    SynthOptions o;
    o.numSlides = 2, o.width = 1024, o.height = 768, o.mpp = 0.5, o.seed = 5;
    o.tumorFraction = 1, o.testFraction = 0;
    synthesizeCohort(dir_->path(), o);
  }
  static void TearDownTestSuite() { delete dir_, dir_ = nullptr; }
  static std::string slidePath() { return dir_->file("slides/synth_000.tiff"); }
  static test::TempDir* dir_;
};
test::TempDir* ResampleTest::dir_ = nullptr;

TEST_F(ResampleTest, LevelIsTheCoarsestAtOrFinerThanTheTarget) {
  auto slide = Slide::open(slidePath());
  ASSERT_GE(slide->levelCount(), 3);
  ASSERT_NEAR(slide->levelDownsample(1), 2.0, 1e-9);
  // mpp 1.0 = level 1 exactly: no resampling.
  PatchGeometry g = resolvePatchGeometry(*slide, 64, 0, 1.0, std::nullopt);
  EXPECT_EQ(g.level, 1);
  EXPECT_EQ(g.readSize, 64);
  EXPECT_NEAR(g.mpp, 1.0, 1e-9);
  // mpp 0.75 lies between levels 0 and 1: read 96 px at level 0 and shrink.
  g = resolvePatchGeometry(*slide, 64, 0, 0.75, std::nullopt);
  EXPECT_EQ(g.level, 0);
  EXPECT_EQ(g.readSize, 96);
  EXPECT_TRUE(g.resamples());
  // Within 1 % of level 1: taken as is.
  g = resolvePatchGeometry(*slide, 64, 0, 1.009, std::nullopt);
  EXPECT_EQ(g.level, 1);
  EXPECT_EQ(g.readSize, 64);
  // Just coarser than 1 % off level 1: still level 1, resampled from a larger read.
  g = resolvePatchGeometry(*slide, 224, 0, 1.5, std::nullopt);
  EXPECT_EQ(g.level, 1);
  EXPECT_EQ(g.readSize, 336);
  // Finer than level 0: level 0, upsampled.
  g = resolvePatchGeometry(*slide, 64, 2, 0.25, std::nullopt);
  EXPECT_EQ(g.level, 0);
  EXPECT_EQ(g.readSize, 32);
  // Level-only requests keep the level and never resample.
  g = resolvePatchGeometry(*slide, 64, 2, std::nullopt, std::nullopt);
  EXPECT_EQ(g.level, 2);
  EXPECT_EQ(g.readSize, 64);
  EXPECT_NEAR(g.mpp, 0.5 * slide->levelDownsample(2), 1e-9);
  // Every target in a sweep gives a patch within 1 % of the target mpp (the integer read size
  // is off by at most 0.5 px, so this holds for patches of 100 px and more).
  for (double t = 0.3; t < 3.5; t *= 1.07) {
    for (int size : {100, 224, 256}) {
      const PatchGeometry s = resolvePatchGeometry(*slide, size, 0, t, std::nullopt);
      EXPECT_LE(std::abs(s.mpp / t - 1), 0.01) << "target " << t << " size " << size;
      if (t >= 0.5) {
        EXPECT_LE(slide->levelDownsample(s.level) * 0.5, t * 1.01) << "coarser than the target";
      }
    }
  }
}

TEST_F(ResampleTest, PatchAtTwiceTheMppEqualsABoxFilteredLevelZeroRead) {
  auto slide = Slide::open(slidePath());
  const int64_t x0 = 300, y0 = 200;
  const int out = 64;
  // Level 0, 128 px read, resampled to 64 px: the libvips path.
  const RgbImage patch = readPatch(*slide, x0, y0, 0, 2 * out, out);
  ASSERT_EQ(patch.width, out);
  ASSERT_EQ(patch.height, out);
  ASSERT_EQ(patch.pixels.size(), size_t(out) * out * 3);
  const RgbImage full = slide->readRegion(x0, y0, 0, 2 * out, 2 * out);
  double sumDiff = 0, sumRef = 0, sumPatch = 0;
  for (int y = 0; y < out; ++y)
    for (int x = 0; x < out; ++x)
      for (int c = 0; c < 3; ++c) {
        const double ref = (full.at(2 * x, 2 * y)[c] + full.at(2 * x + 1, 2 * y)[c] +
                            full.at(2 * x, 2 * y + 1)[c] + full.at(2 * x + 1, 2 * y + 1)[c]) /
                           4.0;
        sumDiff += std::abs(ref - patch.at(x, y)[c]);
        sumRef += ref, sumPatch += patch.at(x, y)[c];
      }
  const double n = double(out) * out * 3;
  EXPECT_LT(sumDiff / n, 1.5);  // same picture: measured 0.55 (Lanczos-3 vs box filter)
  EXPECT_NEAR(sumPatch / n, sumRef / n, 1.5);  // and the same brightness
  // A shifted reference must not match as well: the comparison can fail.
  double shifted = 0;
  for (int y = 0; y < out; ++y)
    for (int x = 0; x + 4 < out; ++x)
      for (int c = 0; c < 3; ++c)
        shifted += std::abs(int(full.at(2 * x + 8, 2 * y)[c]) - patch.at(x, y)[c]);
  EXPECT_GT(shifted / (double(out - 4) * out * 3), sumDiff / n * 3);  // measured 3.6
  // Equal sizes read straight through; upsampling also gives the exact size.
  EXPECT_EQ(readPatch(*slide, x0, y0, 1, 50, 50).pixels,
            slide->readRegion(x0, y0, 1, 50, 50).pixels);
  const RgbImage up = readPatch(*slide, x0, y0, 0, 33, 100);
  EXPECT_EQ(up.width, 100);
  EXPECT_EQ(up.height, 100);
  for (int odd : {63, 65, 97, 223}) {
    const RgbImage r = readPatch(*slide, x0, y0, 0, 150, odd);
    EXPECT_EQ(r.width, odd);
    EXPECT_EQ(r.height, odd);
  }
  EXPECT_THROW(readPatch(*slide, x0, y0, 0, 0, 64), SlideError);
  EXPECT_THROW(readPatch(*slide, x0, y0, 9, 64, 64), SlideError);
}

TEST_F(ResampleTest, IndexAtTargetMppStoresLevelReadSizeAndLevelZeroGrid) {
  auto slide = Slide::open(slidePath());
  RgbImage all{256, 192, std::vector<uint8_t>(256 * 192 * 3, 0)};
  for (size_t i = 0; i < all.pixels.size(); i += 3) all.pixels[i] = 200, all.pixels[i + 2] = 150;
  TissueMaskOptions mo;
  mo.medianRadius = 0, mo.closeRadius = 0;
  const TissueMask mask = TissueMask::fromImage(all, 4.0, mo);  // all tissue
  PatchIndexOptions o;
  o.size = 64, o.minTissue = 0.5, o.targetMpp = 0.75;
  const PatchIndex index = PatchIndex::build(*slide, mask, o, 0);
  EXPECT_EQ(index.options.level, 0);
  EXPECT_EQ(index.readSize, 96);
  EXPECT_NEAR(index.patchMpp, 0.75, 1e-9);
  EXPECT_DOUBLE_EQ(index.levelZeroSize(), 96.0);
  // Grid step = 64 output px = 96 level-0 px; whole patches only: 1024/96 -> 10, 768/96 -> 8.
  ASSERT_EQ(index.patches.size(), 10u * 8u);
  for (const auto& p : index.patches) {
    EXPECT_EQ(p.x % 96, 0);
    EXPECT_EQ(p.y % 96, 0);
  }
  o.targetMpp = 1.0, o.stride = 32;
  const PatchIndex l1 = PatchIndex::build(*slide, mask, o, 0);
  EXPECT_EQ(l1.options.level, 1);
  EXPECT_EQ(l1.readSize, 64);
  EXPECT_EQ(l1.patches[1].x - l1.patches[0].x, 64);  // 32 output px at 1.0 um = 64 level-0 px
  // The read size travels through the cache file; the target changes the cache name.
  test::TempDir dir;
  index.save(dir.file("i.pidx"));
  const PatchIndex back = PatchIndex::load(dir.file("i.pidx"));
  EXPECT_EQ(back.readSize, 96);
  ASSERT_TRUE(back.options.targetMpp);
  EXPECT_DOUBLE_EQ(*back.options.targetMpp, 0.75);
  EXPECT_DOUBLE_EQ(back.patchMpp, index.patchMpp);
  PatchIndexOptions plain;
  plain.size = 64;
  EXPECT_NE(patchIndexCachePath("/c", "s", "fp", plain, {}),
            patchIndexCachePath("/c", "s", "fp", o, {}));
  EXPECT_NE(patchIndexCachePath("/c", "s", "fp", o, {}, 0.25),
            patchIndexCachePath("/c", "s", "fp", o, {}, 0.5));
}

TEST(ResampleNoMppTest, TargetMppWithoutMppNamesTheFileAndBothWays) {
  auto slide = Slide::open(test::sharedSlide("kidney-48-5.tif"));
  try {
    resolvePatchGeometry(*slide, 224, 0, 0.5, std::nullopt);
    FAIL() << "a target mpp on a slide without mpp must throw";
  } catch (const SlideError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("kidney-48-5.tif"), std::string::npos) << m;
    EXPECT_NE(m.find("tiling.target_mpp"), std::string::npos) << m;
    EXPECT_NE(m.find("tiling.mpp_override"), std::string::npos) << m;
    EXPECT_NE(m.find("`mpp` column"), std::string::npos) << m;
  }
  // The same request works once an mpp is given (override or cohort column).
  SlideOptions so;
  so.mppOverride = 0.25;
  auto withMpp = Slide::open(test::sharedSlide("kidney-48-5.tif"), so);
  const PatchGeometry g = resolvePatchGeometry(*withMpp, 100, 0, 0.5, std::nullopt);
  EXPECT_EQ(g.level, 0);
  EXPECT_EQ(g.readSize, 200);
  // Magnification needs the objective power, which this file lacks.
  EXPECT_THROW(resolvePatchGeometry(*withMpp, 100, 0, std::nullopt, 10.0), SlideError);
}

TEST(ResampleMagnificationTest, MagnificationUsesObjectivePower) {
  auto slide = Slide::open(test::sharedSlide("CMU-1-Small-Region.svs"));  // 20x, mpp 0.499
  ASSERT_TRUE(slide->objectivePower());
  ASSERT_NEAR(*slide->objectivePower(), 20, 1e-9);
  PatchGeometry g = resolvePatchGeometry(*slide, 128, 0, std::nullopt, 10.0);
  EXPECT_EQ(g.level, 0);
  EXPECT_EQ(g.readSize, 256);
  EXPECT_NEAR(g.mpp, 0.499 * 2, 0.01);
  g = resolvePatchGeometry(*slide, 128, 0, std::nullopt, 20.0);
  EXPECT_EQ(g.readSize, 128);
  const RgbImage p = readPatch(*slide, 500, 500, g.level, 256, 128);
  EXPECT_EQ(p.width, 128);
  PatchIndexOptions o;
  o.targetMpp = 0.5, o.targetMagnification = 20;
  EXPECT_THROW(o.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace slidetrain::wsi
