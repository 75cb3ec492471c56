// TissueMask and its morphology kernels on images with known answers, plus a real slide.
#include "wsi/TissueMask.h"

#include <gtest/gtest.h>
#include <vips/vips8>

#include <cmath>

#include "tests/wsi/WsiTestUtil.h"
#include "wsi/Errors.h"
#include "wsi/Morphology.h"
#include "wsi/Random.h"

namespace slidetrain::wsi {
namespace {

RgbImage filled(int w, int h, std::array<uint8_t, 3> c) {
  RgbImage img{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
  for (size_t i = 0; i < img.pixels.size(); i += 3) std::copy(c.begin(), c.end(), &img.pixels[i]);
  return img;
}

void paint(RgbImage& img, int x0, int y0, int x1, int y1, std::array<uint8_t, 3> c) {
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) std::copy(c.begin(), c.end(), img.at(x, y));
}

TEST(TissueMaskTest, OtsuSplitsABimodalHistogram) {
  std::vector<uint64_t> h(256, 0);
  h[20] = 1000, h[25] = 500, h[180] = 300, h[200] = 800;
  const int t = otsuThreshold(h);
  EXPECT_GE(t, 25);
  EXPECT_LT(t, 180);
  EXPECT_EQ(otsuThreshold(std::vector<uint64_t>(256, 0)), 0);
}

TEST(TissueMaskTest, MorphologyKernels) {
  Plane p{9, 9, std::vector<uint8_t>(81, 10)};
  p.at(4, 4) = 250;  // salt
  EXPECT_EQ(medianBlur(p, 1).at(4, 4), 10);
  Plane gap{11, 7, std::vector<uint8_t>(77, 0)};
  for (int x = 0; x < 11; ++x) gap.at(x, 3) = x != 5;  // a line broken at x = 5
  EXPECT_EQ(close(gap, 1).at(5, 3), 1);
  EXPECT_EQ(close(gap, 1).at(5, 2), 0);  // closing does not grow the line sideways
  Plane one{5, 5, std::vector<uint8_t>(25, 0)};
  one.at(2, 2) = 1;
  EXPECT_EQ(dilate(one, 1).at(1, 1), 1);
  EXPECT_EQ(dilate(one, 1).at(0, 0), 0);
  EXPECT_EQ(erode(dilate(one, 1), 1).at(1, 1), 0);
  Plane all{4, 4, std::vector<uint8_t>(16, 1)};
  EXPECT_EQ(erode(all, 1).at(0, 0), 1);  // outside counts as 1: borders survive
  Plane ring{7, 7, std::vector<uint8_t>(49, 0)};
  for (int i = 1; i < 6; ++i) ring.at(i, 1) = ring.at(i, 5) = ring.at(1, i) = ring.at(5, i) = 1;
  fillHoles(ring);
  EXPECT_EQ(ring.at(3, 3), 1);
  EXPECT_EQ(ring.at(0, 0), 0);
  removeSmallComponents(ring, 26);  // the filled 5x5 square has 25 pixels
  EXPECT_EQ(ring.at(3, 3), 0);
}

TEST(TissueMaskTest, FindsTissueDropsSpecksFillsHoles) {
  RgbImage img = filled(200, 200, {242, 240, 244});
  paint(img, 50, 60, 150, 140, {230, 150, 190});   // pink tissue, 100 x 80
  paint(img, 90, 90, 100, 100, {245, 245, 245});   // a hole inside it
  paint(img, 10, 10, 12, 12, {120, 40, 140});      // a 2x2 speck of dirt
  TissueMaskOptions opt;
  opt.minComponentArea = 16;
  const TissueMask m = TissueMask::fromImage(img, 4.0, opt);
  EXPECT_EQ(m.width(), 200);
  // Background saturation is 4, tissue 89: Otsu's plateau midpoint lies well between them.
  EXPECT_GT(m.threshold(), 30);
  EXPECT_LT(m.threshold(), 60);
  EXPECT_TRUE(m.at(100, 100));
  EXPECT_TRUE(m.at(95, 95));   // hole filled
  EXPECT_FALSE(m.at(11, 11));  // speck removed
  EXPECT_FALSE(m.at(20, 180));
  EXPECT_NEAR(m.tissueFraction(), 100.0 * 80 / 40000, 0.01);
  // fraction() takes level-0 coordinates: mask pixel (x, y) covers [4x, 4x+4).
  EXPECT_DOUBLE_EQ(m.fraction(60 * 4, 70 * 4, 40 * 4, 40 * 4), 1.0);
  EXPECT_DOUBLE_EQ(m.fraction(0, 0, 40 * 4, 40 * 4), 0.0);
  EXPECT_NEAR(m.fraction(40 * 4, 80 * 4, 20 * 4, 20 * 4), 0.5, 1e-9);  // half over the edge
  EXPECT_NEAR(m.fraction(190 * 4, 190 * 4, 40 * 4, 40 * 4), 0.0, 1e-9);  // off the image
  TissueMaskOptions fixed = opt;
  fixed.threshold = 254;  // nothing is that saturated
  EXPECT_EQ(TissueMask::fromImage(img, 4.0, fixed).tissueFraction(), 0.0);
  TissueMaskOptions bad;
  bad.medianRadius = -1;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
}

TEST(TissueMaskTest, FluorescenceOnADarkBackgroundIsNotAllTissue) {
  // A dark-field (DAPI-like) thumbnail: near-black background with sensor noise, and a block of
  // blue nuclei signal over a quarter of it. Near-black noise is highly saturated (S = 1 - min/max),
  // so the brightfield rule called the whole slide tissue.
  RgbImage img = filled(200, 160, {0, 0, 0});
  Rng rng{7};
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(rng.next() % 14);
  for (int y = 40; y < 120; ++y)
    for (int x = 50; x < 150; ++x) {
      uint8_t* p = img.at(x, y);
      p[0] = static_cast<uint8_t>(10 + rng.next() % 20);
      p[1] = static_cast<uint8_t>(20 + rng.next() % 30);
      p[2] = static_cast<uint8_t>(150 + rng.next() % 90);
    }
  const TissueMask m = TissueMask::fromImage(img, 1.0);
  EXPECT_TRUE(m.darkField());
  const double expected = 80.0 * 100 / (200 * 160);  // 0.25
  EXPECT_NEAR(m.tissueFraction(), expected, 0.03);
  EXPECT_GT(m.fraction(60, 50, 80, 60), 0.95);   // inside the signal
  EXPECT_LT(m.fraction(0, 0, 40, 30), 0.05);      // background corner
  // Forcing the brightfield rule shows the failure this replaces.
  TissueMaskOptions bright;
  bright.background = "bright";
  EXPECT_GT(TissueMask::fromImage(img, 1.0, bright).tissueFraction(), 2 * expected);
  // A brightfield thumbnail stays brightfield under auto.
  RgbImage he = filled(200, 160, {235, 235, 238});
  paint(he, 50, 40, 150, 120, {200, 120, 180});
  const TissueMask b = TissueMask::fromImage(he, 1.0);
  EXPECT_FALSE(b.darkField());
  EXPECT_NEAR(b.tissueFraction(), expected, 0.03);
}

TEST(TissueMaskTest, RealSlideHasSensibleTissueAndQcPicture) {
  auto slide = Slide::open(test::sharedSlide("CMU-1-Small-Region.svs"));
  TissueMaskOptions opt;
  opt.thumbnailMaxSide = 512;
  const TissueMask m = TissueMask::compute(*slide, opt);
  EXPECT_EQ(std::max(m.width(), m.height()), 512);
  EXPECT_NEAR(m.downsample(), 2967.0 / 512, 0.02);
  EXPECT_GT(m.tissueFraction(), 0.2);
  EXPECT_LT(m.tissueFraction(), 0.95);
  test::TempDir dir;
  const std::string png = dir.file("qc.png");
  m.writeQc(m.thumbnail(), png);
  const vips::VImage qc = vips::VImage::new_from_file(png.c_str());
  EXPECT_EQ(qc.width(), m.width());
  EXPECT_EQ(qc.height(), m.height());
  EXPECT_EQ(qc.bands(), 3);
}


TEST(TissueMaskTest, MaskLevelAutoIsNearest32xAndThumbnailMaxSideCaps) {
  // boxes.tiff: 300x250, downsamples 1, 2, 4, 8 -> auto picks 8 (nearest 32 in log scale).
  auto boxes = Slide::open(test::sharedSlide("boxes.tiff"));
  ASSERT_EQ(boxes->levelCount(), 4);
  EXPECT_EQ(TissueMask::autoLevel(*boxes), 3);
  TissueMaskOptions opt;
  opt.medianRadius = 0, opt.closeRadius = 0, opt.minComponentArea = 0;
  TissueMask m = TissueMask::compute(*boxes, opt);
  EXPECT_EQ(m.width(), int(boxes->levelDimensions(3)[0]));
  EXPECT_EQ(m.height(), int(boxes->levelDimensions(3)[1]));
  EXPECT_NEAR(m.downsample(), boxes->levelDownsample(3), 1e-9);
  opt.level = 1;  // an explicit level is read whole...
  m = TissueMask::compute(*boxes, opt);
  EXPECT_EQ(m.width(), 150);
  EXPECT_EQ(m.height(), 125);
  EXPECT_NEAR(m.downsample(), 2.0, 1e-9);
  opt.thumbnailMaxSide = 50;  // ...unless thumbnail_max_side is smaller: it wins
  m = TissueMask::compute(*boxes, opt);
  EXPECT_EQ(m.width(), 50);
  EXPECT_EQ(m.height(), 42);
  EXPECT_NEAR(m.downsample(), 6.0, 1e-9);
  opt.level = 7;
  EXPECT_THROW(TissueMask::compute(*boxes, opt), SlideError);
  opt.level = -2;
  EXPECT_THROW(opt.validate(), std::invalid_argument);
  // A single-level slide: auto means level 0, shrunk to thumbnail_max_side (as before).
  auto cmu = Slide::open(test::sharedSlide("CMU-1-Small-Region.svs"));
  EXPECT_EQ(TissueMask::autoLevel(*cmu), 0);
}

TEST(TissueMaskTest, UserMaskPngIsScaledToTheSlide) {
  // A 60x50 PNG (any size) over boxes.tiff (300x250): tissue in the left third, 16-bit grey.
  test::TempDir dir;
  const std::string png = dir.file("mask.png");
  std::vector<uint16_t> px(60 * 50, 0);
  for (int y = 0; y < 50; ++y)
    for (int x = 0; x < 20; ++x) px[y * 60 + x] = 1000;
  vips::VImage::new_from_memory(px.data(), px.size() * 2, 60, 50, 1, VIPS_FORMAT_USHORT)
      .pngsave(png.c_str());
  auto slide = Slide::open(test::sharedSlide("boxes.tiff"));
  TissueMaskOptions opt;
  opt.maskFile = png;
  const TissueMask m = TissueMask::compute(*slide, opt);
  EXPECT_TRUE(m.fromUser());
  EXPECT_EQ(m.width(), 60);
  EXPECT_EQ(m.height(), 50);
  EXPECT_NEAR(m.downsample(), 5.0, 1e-9);
  EXPECT_NEAR(m.tissueFraction(), 1.0 / 3, 1e-9);
  EXPECT_NEAR(m.fraction(0, 0, 100, 250), 1.0, 1e-9);   // left third of the slide
  EXPECT_NEAR(m.fraction(100, 0, 200, 250), 0.0, 1e-9);
  EXPECT_EQ(m.thumbnail().width, 60);  // QC picture and colour filters have a thumbnail
  // Larger than thumbnail_max_side: scaled down; an RGBA mask uses its colour bands only.
  std::vector<uint8_t> rgba(400 * 300 * 4, 0);
  for (int y = 0; y < 300; ++y)
    for (int x = 0; x < 400; ++x) {
      uint8_t* p = &rgba[(size_t(y) * 400 + x) * 4];
      p[3] = 255;                // opaque everywhere: alpha must not count as tissue
      if (y < 150) p[1] = 1;     // top half: tissue
    }
  const std::string png2 = dir.file("rgba.png");
  vips::VImage::new_from_memory(rgba.data(), rgba.size(), 400, 300, 4, VIPS_FORMAT_UCHAR)
      .pngsave(png2.c_str());
  opt.maskFile = png2;
  opt.thumbnailMaxSide = 100;
  const TissueMask m2 = TissueMask::compute(*slide, opt);
  EXPECT_EQ(m2.width(), 100);
  EXPECT_EQ(m2.height(), 83);
  EXPECT_NEAR(m2.fraction(0, 0, 300, 100), 1.0, 1e-9);
  EXPECT_NEAR(m2.fraction(0, 150, 300, 100), 0.0, 1e-9);
  opt.maskFile = dir.file("missing.png");
  try {
    TissueMask::compute(*slide, opt);
    FAIL() << "a missing mask file must throw";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.png"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slidetrain::wsi
