// Slide: OpenSlide backend against openslide-python, libvips fallback against Pillow, levels,
// mpp rules, thumbnails, concurrency, and a table of bad files that must each fail clearly.
#include "wsi/Slide.h"

#include <gtest/gtest.h>
#include <vips/vips8>

#include <algorithm>
#include <regex>
#include <thread>

#include "tests/wsi/WsiTestUtil.h"
#include "wsi/Errors.h"

namespace slidetrain::wsi {
namespace {

using test::sharedSlide;
using test::TempDir;

// Reads a region with openslide-python and composites it exactly as Slide documents
// (un-premultiplied RGBA over the background), writing raw RGB bytes.
const char* kOpenSlideRef = R"PY(
import sys, openslide
path, x, y, level, w, h, out, br, bg, bb = sys.argv[1:11]
im = openslide.OpenSlide(path).read_region((int(x), int(y)), int(level), (int(w), int(h)))
back = (int(br), int(bg), int(bb))
data = im.tobytes()
res = bytearray()
for i in range(0, len(data), 4):
    a = data[i + 3]
    if a == 255: res += data[i:i + 3]
    elif a == 0: res += bytes(back)
    else: res += bytes((data[i + k] * a + back[k] * (255 - a) + 127) // 255 for k in range(3))
open(out, 'wb').write(res)
)PY";

std::vector<uint8_t> openslideReference(const std::string& path, int64_t x, int64_t y, int level,
                                        int w, int h, std::array<uint8_t, 3> bg) {
  TempDir dir;
  const std::string out = dir.file("ref.rgb");
  std::string args = path + " " + std::to_string(x) + " " + std::to_string(y) + " " +
                     std::to_string(level) + " " + std::to_string(w) + " " + std::to_string(h) +
                     " " + out;
  for (auto c : bg) args += " " + std::to_string(c);
  EXPECT_EQ(test::runPython(kOpenSlideRef, args, dir), 0) << "python reference failed";
  return test::readBytes(out);
}

size_t countDifferent(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return std::max(a.size(), b.size());
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
  return n;
}

TEST(SlideTest, AperioPropertiesAndAssociatedImages) {
  auto slide = Slide::open(sharedSlide("CMU-1-Small-Region.svs"));
  EXPECT_EQ(slide->backend(), "openslide");
  EXPECT_EQ(slide->vendor(), "aperio");
  ASSERT_EQ(slide->levelCount(), 1);
  EXPECT_EQ(slide->levelDimensions(0), (std::array<int64_t, 2>{2220, 2967}));
  ASSERT_TRUE(slide->mpp());
  EXPECT_DOUBLE_EQ(*slide->mpp(), 0.499);
  EXPECT_DOUBLE_EQ(slide->requireMpp(), 0.499);
  ASSERT_TRUE(slide->objectivePower());
  EXPECT_DOUBLE_EQ(*slide->objectivePower(), 20);
  EXPECT_EQ(slide->associatedImageNames(),
            (std::vector<std::string>{"label", "macro", "thumbnail"}));
  const RgbImage label = slide->associatedImage("label");
  EXPECT_GT(label.width, 0);
  EXPECT_EQ(label.pixels.size(), size_t(label.width) * label.height * 3);
  EXPECT_THROW(slide->associatedImage("nope"), SlideError);
  SlideOptions withOverride;
  withOverride.mppOverride = 0.25;
  EXPECT_DOUBLE_EQ(*Slide::open(sharedSlide("CMU-1-Small-Region.svs"), withOverride)->mpp(), 0.25);
}

TEST(SlideTest, RegionsEqualOpenSlidePythonPixelForPixel) {
  const std::string path = sharedSlide("CMU-1-Small-Region.svs");
  struct Case { int64_t x, y; int w, h; std::array<uint8_t, 3> bg; };
  // The second case hangs off the bottom-right corner so that transparent pixels are composited
  // over a non-white background.
  for (const Case c : {Case{1000, 1200, 300, 200, {255, 255, 255}},
                       Case{2100, 2900, 160, 120, {10, 200, 30}}}) {
    SlideOptions opt;
    opt.background = c.bg;
    auto slide = Slide::open(path, opt);
    const RgbImage img = slide->readRegion(c.x, c.y, 0, c.w, c.h);
    const auto ref = openslideReference(path, c.x, c.y, 0, c.w, c.h, c.bg);
    ASSERT_EQ(ref.size(), img.pixels.size());
    EXPECT_EQ(countDifferent(img.pixels, ref), 0u) << "region at " << c.x << "," << c.y;
  }
  auto slide = Slide::open(path, {std::nullopt, {10, 200, 30}});
  const RgbImage corner = slide->readRegion(2100, 2900, 0, 160, 120);
  const uint8_t* outside = corner.at(159, 119);  // beyond 2220x2967
  EXPECT_EQ(outside[0], 10);
  EXPECT_EQ(outside[1], 200);
  EXPECT_EQ(outside[2], 30);
}

TEST(SlideTest, GenericTiffLevelsAndBestLevel) {
  const std::string path = sharedSlide("boxes.tiff");
  auto slide = Slide::open(path);
  EXPECT_EQ(slide->backend(), "openslide");
  EXPECT_EQ(slide->vendor(), "generic-tiff");
  ASSERT_EQ(slide->levelCount(), 4);
  EXPECT_EQ(slide->levelDimensions(0), (std::array<int64_t, 2>{300, 250}));
  EXPECT_EQ(slide->levelDimensions(1), (std::array<int64_t, 2>{150, 125}));
  EXPECT_EQ(slide->levelDimensions(2), (std::array<int64_t, 2>{75, 62}));
  EXPECT_EQ(slide->levelDimensions(3), (std::array<int64_t, 2>{37, 31}));
  EXPECT_EQ(slide->bestLevelForDownsample(0.5), 0);
  EXPECT_EQ(slide->bestLevelForDownsample(1.9), 0);
  EXPECT_EQ(slide->bestLevelForDownsample(2.0), 1);
  EXPECT_EQ(slide->bestLevelForDownsample(3.9), 1);
  EXPECT_EQ(slide->bestLevelForDownsample(100), 3);
  // boxes.tiff records 72 dpi, a writer placeholder, which must not be taken as 353 um/px.
  EXPECT_FALSE(slide->mpp());
  EXPECT_THROW(slide->levelDimensions(4), SlideError);
  const RgbImage img = slide->readRegion(40, 24, 2, 30, 25);
  EXPECT_EQ(countDifferent(img.pixels, openslideReference(path, 40, 24, 2, 30, 25, {255, 255, 255})),
            0u);
}

TEST(SlideTest, PlainTiffFallsBackToVipsAndMatchesPillow) {
  const std::string path = sharedSlide("kidney-48-5.tif");
  auto slide = Slide::open(path);
  EXPECT_EQ(slide->backend(), "vips");
  EXPECT_EQ(slide->vendor(), "vips");
  ASSERT_EQ(slide->levelCount(), 1);
  EXPECT_EQ(slide->levelDimensions(0), (std::array<int64_t, 2>{1493, 901}));
  EXPECT_FALSE(slide->mpp());
  try {
    slide->requireMpp();
    FAIL() << "requireMpp must throw when no mpp is recorded";
  } catch (const SlideError& e) {
    EXPECT_NE(std::string(e.what()).find("kidney-48-5.tif"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tiling.mpp_override"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("mpp"), std::string::npos) << e.what();
  }
  TempDir dir;
  const std::string out = dir.file("ref.rgb");
  ASSERT_EQ(test::runPython("import sys\nfrom PIL import Image\n"
                            "im = Image.open(sys.argv[1]).convert('RGB').crop((1400, 850, 1600, 950))\n"
                            "open(sys.argv[2], 'wb').write(im.tobytes())\n",
                            path + " " + out, dir),
            0);
  auto ref = test::readBytes(out);
  // Pillow pads with black past the edge; OpenSlide semantics pad with the background colour.
  RgbImage img = slide->readRegion(1400, 850, 0, 200, 100);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 200; ++x)
      if (1400 + x >= 1493 || 850 + y >= 901)
        for (int k = 0; k < 3; ++k) {
          EXPECT_EQ(img.at(x, y)[k], 255);
          ref[(size_t(y) * 200 + x) * 3 + k] = 255;
        }
  EXPECT_EQ(countDifferent(img.pixels, ref), 0u);
}

TEST(SlideTest, VipsBackendCompositesAlphaOverBackground) {
  TempDir dir;
  const std::string png = dir.file("rgba.png");
  // Left half opaque red, right half fully transparent.
  vips::VImage rgb = vips::VImage::black(8, 4, vips::VImage::option()->set("bands", 3)) +
                     std::vector<double>{200, 0, 0};
  vips::VImage alpha = vips::VImage::black(8, 4);
  alpha.draw_rect({255}, 0, 0, 4, 4, vips::VImage::option()->set("fill", true));
  rgb.bandjoin(alpha).cast(VIPS_FORMAT_UCHAR).pngsave(png.c_str());
  auto slide = Slide::open(png, {std::nullopt, {1, 2, 3}});
  EXPECT_EQ(slide->backend(), "vips");
  const RgbImage img = slide->readRegion(0, 0, 0, 8, 4);
  EXPECT_EQ(img.at(1, 1)[0], 200);
  EXPECT_EQ(img.at(6, 1)[0], 1);
  EXPECT_EQ(img.at(6, 1)[1], 2);
  EXPECT_EQ(img.at(6, 1)[2], 3);
}

TEST(SlideTest, ThumbnailFitsAndKeepsMeanColour) {
  auto slide = Slide::open(sharedSlide("CMU-1-Small-Region.svs"));
  double ds = 0;
  const RgbImage thumb = slide->thumbnail(256, &ds);
  EXPECT_EQ(thumb.height, 256);
  EXPECT_EQ(thumb.width, 192);  // round(2220 * 256 / 2967)
  EXPECT_NEAR(ds, 2220.0 / 192, 1e-9);
  const RgbImage full = slide->readRegion(0, 0, 0, 2220, 2967);
  for (int k = 0; k < 3; ++k) {
    double a = 0, b = 0;
    for (size_t i = k; i < full.pixels.size(); i += 3) a += full.pixels[i];
    for (size_t i = k; i < thumb.pixels.size(); i += 3) b += thumb.pixels[i];
    EXPECT_NEAR(a / (full.pixels.size() / 3), b / (thumb.pixels.size() / 3), 1.0);
  }
  // Pyramids: the thumbnail comes from a coarser level and still fits.
  const RgbImage boxes = Slide::open(sharedSlide("boxes.tiff"))->thumbnail(100, &ds);
  EXPECT_EQ(boxes.width, 100);
  EXPECT_EQ(boxes.height, 83);
  EXPECT_NEAR(ds, 3.0, 1e-9);
}

TEST(SlideTest, ConcurrentReadsEqualSerialReads) {
  for (const char* name : {"CMU-1-Small-Region.svs", "kidney-48-5.tif"}) {
    auto slide = Slide::open(sharedSlide(name));
    const auto dims = slide->levelDimensions(0);
    std::vector<std::array<int64_t, 2>> origins;
    for (int i = 0; i < 32; ++i) origins.push_back({(i * 397) % (dims[0] - 64), (i * 211) % (dims[1] - 64)});
    std::vector<RgbImage> serial;
    for (auto o : origins) serial.push_back(slide->readRegion(o[0], o[1], 0, 64, 64));
    std::vector<RgbImage> parallel(origins.size());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (size_t i = t; i < origins.size(); i += 4)
          parallel[i] = slide->readRegion(origins[i][0], origins[i][1], 0, 64, 64);
      });
    for (auto& th : threads) th.join();
    for (size_t i = 0; i < origins.size(); ++i)
      EXPECT_EQ(parallel[i].pixels, serial[i].pixels) << name << " region " << i;
  }
}

TEST(SlideTest, BadArgumentsNameTheSlide) {
  auto slide = Slide::open(sharedSlide("boxes.tiff"));
  EXPECT_THROW(slide->readRegion(0, 0, 7, 10, 10), SlideError);
  try {
    slide->readRegion(0, 0, 0, 0, 10);
    FAIL();
  } catch (const SlideError& e) {
    EXPECT_TRUE(std::regex_search(e.what(), std::regex("boxes\\.tiff' level 0 region")))
        << e.what();
  }
}

// Table-driven, as OpenSlide's own test cases: each bad input with the error it must produce.
TEST(SlideTest, BadFilesFailWithTheirOwnClearError) {
  struct Case {
    std::string file;
    bool failsOnOpen;
    std::string pattern;
  };
  const std::vector<Case> cases = {
      {"negative/broken.svs", true,
       "cannot open slide '.*negative/broken\\.svs': OpenSlide does not recognise the format; "
       "libvips: .*not a known file format"},
      {"negative/unopenable.tiff", true,
       "cannot open slide '.*negative/unopenable\\.tiff': OpenSlide: Unsupported TIFF "
       "compression: 52479; libvips: .*"},
      {"negative/unreadable.svs", false,
       "slide '.*negative/unreadable\\.svs' level 0 region \\(x=0, y=0, w=16, h=16\\): "
       "Bogus marker length"},
      {"negative/does-not-exist.svs", true,
       "cannot open slide '.*does-not-exist\\.svs': file does not exist"},
  };
  // Every file in negative/ must have a case, so a new fixture cannot go untested.
  for (const auto& entry : std::filesystem::directory_iterator(sharedSlide("negative"))) {
    const std::string name = "negative/" + entry.path().filename().string();
    EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [&](auto& c) { return c.file == name; }))
        << name << " has no expected error";
  }
  for (const auto& c : cases) {
    SCOPED_TRACE(c.file);
    std::string message;
    try {
      auto slide = Slide::open(sharedSlide(c.file));
      ASSERT_FALSE(c.failsOnOpen) << "open should have failed";
      slide->readRegion(0, 0, 0, 16, 16);
    } catch (const SlideError& e) {
      message = e.what();
    }
    EXPECT_TRUE(std::regex_search(message, std::regex(c.pattern)))
        << "message: " << message << "\npattern: " << c.pattern;
  }
}

}  // namespace
}  // namespace slidetrain::wsi
