#include <gtest/gtest.h>

#include <tiffio.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "wsi/Augment.h"
#include "wsi/Errors.h"
#include "WsiTestUtil.h"
#include "wsi/PatchReader.h"
#include "wsi/PatchStream.h"
#include "wsi/SynthCohort.h"

using namespace slidetrain::wsi;
using slidetrain::wsi::test::TempDir;

namespace {
const std::string kCmu = std::string(SLIDETRAIN_SHARED_DATA) + "/slides/CMU-1-Small-Region.svs";
const std::string kUnreadable = std::string(SLIDETRAIN_SHARED_DATA) + "/slides/negative/unreadable.svs";

std::vector<std::vector<PatchRequest>> grid(int32_t slide, int n, int perBatch, int size) {
  std::vector<std::vector<PatchRequest>> out;
  int64_t id = 0;
  for (int i = 0; i < n; ++i) {
    if (i % perBatch == 0) out.emplace_back();
    PatchRequest r;
    r.slide = slide;
    r.x = (i % 8) * size;
    r.y = (i / 8) * size;
    r.size = size;
    r.label = i % 2;
    r.id = id++;
    out.back().push_back(r);
  }
  return out;
}
}  // namespace

TEST(PatchStream, BatchesInOrderWithPixelsOfReadRegion) {
  StreamOptions o;
  o.workers = 3;
  o.prefetchBatches = 2;
  PatchStream s({kCmu}, o);
  auto batches = grid(0, 40, 6, 64);
  s.start(batches);
  auto slide = Slide::open(kCmu);
  size_t k = 0;
  while (auto b = s.next()) {
    ASSERT_EQ(b->index, static_cast<int64_t>(k));
    ASSERT_EQ(b->count(), batches[k].size());
    for (size_t i = 0; i < b->count(); ++i) {
      const auto& r = batches[k][i];
      EXPECT_EQ(b->ids[i], r.id);
      RgbImage ref = slide->readRegion(r.x, r.y, 0, 64, 64);
      ASSERT_TRUE(std::equal(ref.pixels.begin(), ref.pixels.end(),
                             b->pixels.begin() + static_cast<long>(i * 64 * 64 * 3)));
    }
    ++k;
  }
  EXPECT_EQ(k, batches.size());
  EXPECT_EQ(s.stats().patches, 40);
}

TEST(PatchStream, AugmentationIndependentOfThreadCount) {
  AugmentOptions a;  // every augmentation on
  a.brightness = a.saturation = a.contrast = 0.2;
  a.hue = 0.03, a.rotate = 10, a.shift = 0.05, a.scale = 0.1, a.hed = 0.05;
  a.blur = 1, a.sharpen = 0.3, a.noise = 4;
  a.stainNorm = StainNorm::Reinhard;
  PatchTransform t = [&](RgbImage& img, const PatchRequest& r) { augmentPatch(img, a, 1000 + r.id); };
  std::vector<std::vector<uint8_t>> results;
  for (int workers : {1, 2, 5}) {
    StreamOptions o;
    o.workers = workers;
    PatchStream s({kCmu}, o, t);
    s.start(grid(0, 24, 5, 32));
    std::vector<uint8_t> all;
    while (auto b = s.next()) all.insert(all.end(), b->pixels.begin(), b->pixels.end());
    results.push_back(all);
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

TEST(PatchStream, BadTileSurfacesInConsumerNamingSlideAndPatch) {
  StreamOptions o;
  o.workers = 2;
  PatchStream s({kCmu, kUnreadable}, o);
  auto batches = grid(0, 8, 4, 16);
  PatchRequest bad;
  bad.slide = 1;
  bad.size = 16;
  bad.id = 777;
  batches.push_back({bad});
  batches.push_back(grid(0, 4, 4, 16)[0]);
  s.start(batches);
  ASSERT_TRUE(s.next());
  ASSERT_TRUE(s.next());
  try {
    s.next();
    FAIL() << "expected an error";
  } catch (const SlideError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unreadable.svs"), std::string::npos) << m;
    EXPECT_NE(m.find("patch 777"), std::string::npos) << m;
  }
  EXPECT_TRUE(s.next());  // the stream goes on after the failed batch
}

TEST(PatchStream, SkipPolicyDropsBadPatchAndContinues) {
  StreamOptions o;
  o.skipBadPatches = true;
  PatchStream s({kCmu, kUnreadable}, o);
  auto batches = grid(0, 4, 4, 16);
  PatchRequest bad;
  bad.slide = 1;
  bad.size = 16;
  bad.id = 99;
  batches[0].push_back(bad);
  s.start(batches);
  auto b = s.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->count(), 4u);
  EXPECT_EQ(s.stats().skipped, 1);
  ASSERT_FALSE(s.stats().skippedReasons.empty());
  EXPECT_NE(s.stats().skippedReasons[0].find("patch 99"), std::string::npos);
}

TEST(PatchStream, PrefetchIsBounded) {
  StreamOptions o;
  o.workers = 4;
  o.prefetchBatches = 2;
  PatchStream s({kCmu}, o);
  s.start(grid(0, 64, 2, 32));  // 32 batches
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Nothing consumed yet: at most prefetchBatches batches may have been read.
  EXPECT_LE(s.stats().patches, 2 * 2);
  int n = 0;
  while (s.next()) ++n;
  EXPECT_EQ(n, 32);
}

#ifdef __SANITIZE_ADDRESS__
// In libasan (GCC 12 ships no declaration): drains ASan's quarantine of freed blocks (256 MB by
// default) and returns free memory to the system, so that RSS measures what the code holds.
extern "C" void __sanitizer_purge_allocator();
#endif

namespace {
long rssKb() {
#ifdef __SANITIZE_ADDRESS__
  __sanitizer_purge_allocator();
#endif
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}
}  // namespace

TEST(PatchStream, DirectReadsEqualOpenSlideAndUseTheTilePath) {
  auto batches = grid(0, 48, 7, 100);  // 100-px patches straddle the 240-px tiles
  for (auto& b : batches)
    for (auto& r : b) r.x += 37, r.y += 11;
  std::vector<std::vector<uint8_t>> out;
  std::vector<StreamStats> st;
  for (bool direct : {true, false}) {
    StreamOptions o;
    o.workers = 3;
    o.directReads = direct;
    PatchStream s({kCmu}, o);
    s.start(batches);
    std::vector<uint8_t> all;
    while (auto b = s.next()) all.insert(all.end(), b->pixels.begin(), b->pixels.end());
    out.push_back(all);
    st.push_back(s.stats());
  }
  EXPECT_EQ(out[0], out[1]);
  EXPECT_EQ(st[0].directPatches, 48);
  EXPECT_EQ(st[1].fallbackPatches, 48);
  EXPECT_GT(st[0].tileCacheHits, 0);  // neighbouring patches share tiles
  EXPECT_GT(st[0].patchesPerSecond(), 0);
  EXPECT_GT(st[0].decodedMBPerSecond(), 0);
}

TEST(PatchStream, ReadSizeResamplesToSize) {
  auto batches = grid(0, 6, 3, 32);
  for (auto& b : batches)
    for (auto& r : b) r.readSize = 64;
  StreamOptions o;
  o.workers = 2;
  PatchStream s({kCmu}, o);
  s.start(batches);
  auto slide = Slide::open(kCmu);
  while (auto b = s.next()) {
    ASSERT_EQ(b->pixels.size(), b->count() * 32 * 32 * 3);
    // Mean colour is preserved by the resampling (to within rounding).
    const auto& r = b->requests[0];
    RgbImage big = slide->readRegion(r.x, r.y, 0, 64, 64);
    double m1 = 0, m2 = 0;
    for (uint8_t v : big.pixels) m1 += v;
    for (size_t i = 0; i < 32 * 32 * 3; ++i) m2 += b->pixels[i];
    EXPECT_NEAR(m1 / big.pixels.size(), m2 / (32 * 32 * 3), 2.0);
  }
}

TEST(PatchStream, CorruptTileMidStreamNamesSlideAndPatchAndSkipContinues) {
  TempDir dir;
  SynthOptions so;
  so.numSlides = 1;
  so.width = 1024, so.height = 768, so.tileSize = 256;
  synthesizeCohort(dir.path(), so);
  const std::string good = dir.file("slides/synth_000.tiff"), bad = dir.file("bad.tiff");
  std::filesystem::copy_file(good, bad);
  {  // Overwrite the start of level-0 tile (1, 1) so that its JPEG header is invalid.
    TIFF* t = TIFFOpen(bad.c_str(), "r");
    ASSERT_TRUE(t);
    uint64_t* offsets = nullptr;
    ASSERT_TRUE(TIFFGetField(t, TIFFTAG_TILEOFFSETS, &offsets));
    const uint64_t off = offsets[TIFFComputeTile(t, 256, 256, 0, 0)];
    TIFFClose(t);
    std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(off));
    const char junk[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    f.write(junk, sizeof junk);
  }
  // Batches over the grid of 128-px patches; the bad tile is met in the middle of the stream.
  std::vector<std::vector<PatchRequest>> batches;
  int64_t id = 0;
  for (int y = 0; y < 768; y += 128)
    for (int x = 0; x < 1024; x += 128) {
      if (id % 8 == 0) batches.emplace_back();
      PatchRequest r;
      r.x = x, r.y = y, r.size = 128, r.id = id++;
      batches.back().push_back(r);
    }
  for (bool skip : {false, true}) {
    StreamOptions o;
    o.workers = 3;
    o.skipBadPatches = skip;
    PatchStream s({bad}, o);
    s.start(batches);
    int delivered = 0, failed = 0;
    size_t patches = 0;
    std::string message;
    for (;;) {
      try {
        auto b = s.next();
        if (!b) break;
        ++delivered;
        patches += b->count();
      } catch (const SlideError& e) {
        ++failed;
        message = e.what();
      }
    }
    if (!skip) {
      EXPECT_EQ(failed, 2) << "patches (256,256) (384,256) (256,384) (384,384) lie in 2 batches";
      EXPECT_EQ(delivered, static_cast<int>(batches.size()) - 2);
      EXPECT_NE(message.find("bad.tiff"), std::string::npos) << message;
      EXPECT_NE(message.find("patch "), std::string::npos) << message;
      EXPECT_NE(message.find("tile (1, 1)"), std::string::npos) << message;
    } else {
      EXPECT_EQ(failed, 0);
      EXPECT_EQ(patches, 48u - 4u);
      EXPECT_EQ(s.stats().skipped, 4);
    }
  }
}

TEST(PatchStream, MemoryStaysBoundedOverALongStream) {
  StreamOptions o;
  o.workers = 3;
  o.prefetchBatches = 3;
  o.tileCacheBytes = 4 << 20;
  PatchStream s({kCmu}, o);
  // 400 batches of 16 patches of 64 px cycling over the slide: ~6400 patches.
  std::vector<std::vector<PatchRequest>> batches;
  int64_t id = 0;
  for (int b = 0; b < 400; ++b) {
    batches.emplace_back();
    for (int i = 0; i < 16; ++i, ++id) {
      PatchRequest r;
      r.x = (id * 97) % 2100, r.y = (id * 61) % 2850, r.size = 64, r.id = id;
      batches.back().push_back(r);
    }
  }
  s.start(batches);
  long rssAfterWarmup = 0;
  int n = 0;
  while (auto b = s.next()) {
    if (++n == 50) rssAfterWarmup = rssKb();
  }
  EXPECT_EQ(n, 400);
  const auto st = s.stats();
  const int64_t batchBytes = 16 * 64 * 64 * 3;
  EXPECT_LE(st.peakBufferedBytes, o.prefetchBatches * batchBytes);
  EXPECT_EQ(st.bufferedBytes, 0);
  EXPECT_LT(rssKb() - rssAfterWarmup, 32 * 1024) << "RSS grew by more than 32 MB after warm-up";
}

TEST(PatchStream, TileReadOrderGroupsByTileThenOneRunPerWorker) {
  // Slide 0 has 512 px tiles (known), slide 1 none yet (256 stands in); batch 1 is outside the
  // window [0, 1) except when asked for.
  auto req = [](int32_t slide, int64_t x, int64_t y) {
    PatchRequest r;
    r.slide = slide, r.x = x, r.y = y, r.size = 64;
    return r;
  };
  const std::vector<std::vector<PatchRequest>> batches = {
      {req(1, 300, 0), req(0, 600, 0), req(0, 10, 0), req(1, 0, 0), req(0, 0, 520),
       req(0, 500, 0)},
      {req(0, 0, 0)}};
  const std::vector<std::array<int, 2>> tiles = {{512, 512}, {0, 0}};
  using Order = std::vector<std::pair<int64_t, int>>;
  // Tile order: slide 0 tile (0,0): positions 2, 5; tile (0,1): 1; tile row 1: 4; slide 1
  // tile (0,0): 3; (0,1): 0.
  EXPECT_EQ(tileReadOrder(batches, 0, 1, tiles, 1),
            (Order{{0, 2}, {0, 5}, {0, 1}, {0, 4}, {0, 3}, {0, 0}}));
  // Two workers: runs [2 5 1] and [4 3 0], interleaved so each worker pops its own run.
  EXPECT_EQ(tileReadOrder(batches, 0, 1, tiles, 2),
            (Order{{0, 2}, {0, 4}, {0, 5}, {0, 3}, {0, 1}, {0, 0}}));
  // Four workers: runs of two, the last one empty.
  EXPECT_EQ(tileReadOrder(batches, 0, 1, tiles, 4),
            (Order{{0, 2}, {0, 1}, {0, 3}, {0, 5}, {0, 4}, {0, 0}}));
  // Within a tile, patches keep batch order: batch 1's patch shares slide 0's first tile.
  EXPECT_EQ(tileReadOrder(batches, 0, 2, tiles, 1).at(2), (std::pair<int64_t, int>{1, 0}));
  EXPECT_TRUE(tileReadOrder(batches, 1, 1, tiles, 3).empty());
}
