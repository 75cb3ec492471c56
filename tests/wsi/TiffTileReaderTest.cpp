#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "WsiTestUtil.h"
#include "wsi/Errors.h"
#include "wsi/SynthCohort.h"
#include "wsi/TiffTileReader.h"

using namespace slidetrain::wsi;
using slidetrain::wsi::test::sharedSlide;
using slidetrain::wsi::test::TempDir;

namespace {

/// Compares direct reads with OpenSlide's at `level` over regions that cover tile interiors,
/// tile seams, the right/bottom edge tiles and areas outside the image.
int expectSameAsOpenSlide(const Slide& slide, const TiffTileReader& reader, int level) {
  int compared = 0;
  const auto dim = slide.levelDimensions(level);
  const auto ts = reader.tileSize(level);
  const int64_t W = dim[0], H = dim[1];
  const double ds = slide.levelDownsample(level);
  std::vector<std::array<int64_t, 4>> regions = {  // level coords x, y, w, h
      {0, 0, ts[0], ts[1]},
      {ts[0] / 2, ts[1] / 3, ts[0], ts[1]},            // crosses four tiles
      {W - ts[0] / 2, H - ts[1] / 2, ts[0], ts[1]},    // bottom-right edge, partly outside
      {W - 100, 0, 300, 50},                           // right edge tile
      {0, H - 7, 64, 64},                              // bottom edge tile
      {-20, -30, 100, 90},                             // top-left outside
      {W + 5, H + 5, 16, 16},                          // fully outside
      {W / 2 - 150, H / 2 - 170, 333, 301}};
  for (const auto& g : regions) {
    const int64_t x = static_cast<int64_t>(g[0] * ds), y = static_cast<int64_t>(g[1] * ds);
    RgbImage direct;
    if (!reader.tryReadRegion(x, y, level, int(g[2]), int(g[3]), direct)) {
      // Only reads off the level's pixel grid (non-integral downsample) may be refused.
      const bool offGrid = double(x) / ds != std::floor(double(x) / ds) ||
                           double(y) / ds != std::floor(double(y) / ds);
      EXPECT_TRUE(offGrid) << "level " << level << " x " << x << " y " << y;
      continue;
    }
    ++compared;
    RgbImage ref = slide.readRegion(x, y, level, int(g[2]), int(g[3]));
    EXPECT_EQ(direct.width, ref.width);
    EXPECT_EQ(direct.height, ref.height);
    if (direct.pixels.size() != ref.pixels.size()) continue;
    size_t diff = 0;
    for (size_t i = 0; i < ref.pixels.size(); ++i) diff += ref.pixels[i] != direct.pixels[i];
    EXPECT_EQ(diff, 0u) << slide.path() << " level " << level << " region " << g[0] << "," << g[1]
                        << " " << g[2] << "x" << g[3];
  }
  return compared;
}

}  // namespace

TEST(TiffTileReader, SameAsOpenSlideOnAperioSvs) {
  auto slide = Slide::open(sharedSlide("CMU-1-Small-Region.svs"));
  std::string why;
  auto reader = TiffTileReader::open(*slide, {255, 255, 255}, nullptr, 8u << 20, &why);
  ASSERT_TRUE(reader) << why;
  ASSERT_TRUE(reader->supportsLevel(0));
  EXPECT_EQ(reader->tileSize(0)[0], 240);
  EXPECT_EQ(expectSameAsOpenSlide(*slide, *reader, 0), 8);
  // The whole level, tile by tile and in one read.
  const auto d = slide->levelDimensions(0);
  RgbImage all;
  ASSERT_TRUE(reader->tryReadRegion(0, 0, 0, int(d[0]), int(d[1]), all));
  EXPECT_EQ(all.pixels, slide->readRegion(0, 0, 0, int(d[0]), int(d[1])).pixels);
  EXPECT_GT(reader->stats().tilesDecoded, 0);
  EXPECT_GT(reader->stats().cacheHits, 0);
}

TEST(TiffTileReader, SameAsOpenSlideOnSyntheticGenericTiffAllLevels) {
  TempDir dir;
  SynthOptions o;
  o.numSlides = 1;
  o.width = 1500;  // not a multiple of the tile size: partial edge tiles on every level
  o.height = 1100;
  o.tileSize = 256;
  synthesizeCohort(dir.path(), o);
  auto slide = Slide::open(dir.file("slides/synth_000.tiff"));
  ASSERT_EQ(slide->vendor(), "generic-tiff");
  std::string why;
  auto reader = TiffTileReader::open(*slide, {255, 255, 255}, nullptr, 8u << 20, &why);
  ASSERT_TRUE(reader) << why;
  for (int l = 0; l < slide->levelCount(); ++l) {
    if (slide->levelDimensions(l)[0] < 64) continue;
    ASSERT_TRUE(reader->supportsLevel(l)) << l;
    EXPECT_GE(expectSameAsOpenSlide(*slide, *reader, l), l == 0 ? 8 : 1) << "level " << l;
  }
  // A level-1 read at a level-0 position that is not on the level-1 grid goes to OpenSlide.
  RgbImage img;
  if (slide->levelCount() > 1) {
    EXPECT_FALSE(reader->tryReadRegion(1, 1, 1, 8, 8, img));
  }
}

TEST(TiffTileReader, CustomBackgroundOutsideTheImage) {
  SlideOptions so;
  so.background = {10, 20, 30};
  auto slide = Slide::open(sharedSlide("CMU-1-Small-Region.svs"), so);
  auto reader = TiffTileReader::open(*slide, so.background);
  ASSERT_TRUE(reader);
  RgbImage a;
  const auto d = slide->levelDimensions(0);
  ASSERT_TRUE(reader->tryReadRegion(d[0] - 10, d[1] - 10, 0, 32, 32, a));
  EXPECT_EQ(a.pixels, slide->readRegion(d[0] - 10, d[1] - 10, 0, 32, 32).pixels);
  EXPECT_EQ(a.at(31, 31)[0], 10);
}

TEST(TiffTileReader, RefusesOtherFormats) {
  auto vipsSlide = Slide::open(sharedSlide("kidney-48-5.tif"));
  std::string why;
  EXPECT_FALSE(TiffTileReader::open(*vipsSlide, {255, 255, 255}, nullptr, 1 << 20, &why));
  EXPECT_FALSE(why.empty());
}

TEST(TiffTileReader, ConcurrentReadsShareTheCacheAndAgree) {
  auto slide = Slide::open(sharedSlide("CMU-1-Small-Region.svs"));
  auto reader = TiffTileReader::open(*slide, {255, 255, 255}, std::make_shared<TileCache>(2u << 20));
  ASSERT_TRUE(reader);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const int64_t x = ((i * 7 + t * 3) % 16) * 113, y = ((i * 5 + t) % 20) * 127;
        RgbImage img;
        if (!reader->tryReadRegion(x, y, 0, 200, 200, img)) ++mismatches;
        else if (img.pixels != slide->readRegion(x, y, 0, 200, 200).pixels) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(TiffTileReader, CacheStaysWithinItsBound) {
  TileCache cache(1u << 20);
  for (int i = 0; i < 100; ++i) {
    bool decoded = false;
    auto t = cache.get(TileCache::Key{1, 0, i}, [] {
      auto d = std::make_shared<DecodedTile>();
      d->rgb.resize(100000);
      return TileCache::TilePtr(d);
    }, &decoded);
    EXPECT_TRUE(decoded);
    EXPECT_LE(cache.bytes(), cache.maxBytes());
  }
  bool decoded = true;
  cache.get(TileCache::Key{1, 0, 99}, [] { return TileCache::TilePtr(); }, &decoded);
  EXPECT_FALSE(decoded);  // the newest tile is still cached
}

TEST(TiffTileReader, CorruptTileThrowsNamingFileAndTile) {
  auto slide = Slide::open(sharedSlide("negative/unreadable.svs"));
  auto reader = TiffTileReader::open(*slide);
  ASSERT_TRUE(reader) << "unreadable.svs is a tiled JPEG Aperio file: the direct path must apply";
  RgbImage img;
  try {
    reader->tryReadRegion(0, 0, 0, 16, 16, img);
    FAIL() << "expected a decode error";
  } catch (const SlideError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unreadable.svs"), std::string::npos) << m;
    EXPECT_NE(m.find("tile (0, 0)"), std::string::npos) << m;
  }
}
