// Patch-folder datasets: folder scanning (both layouts, order, what is ignored, errors naming the
// folder), image decoding (grey, alpha, JPEG, 16-bit; unreadable files named) and the stream's
// whole-image reads (resized to the patch size, errors naming the file).
#include <gtest/gtest.h>

#include <vips/vips8>

#include <filesystem>

#include "WsiTestUtil.h"
#include "tests/ErrorOf.h"
#include "wsi/Augment.h"
#include "wsi/Errors.h"
#include "wsi/ImageIo.h"
#include "wsi/PatchFolders.h"
#include "wsi/PatchStream.h"
#include "wsi/Resample.h"

using namespace slidetrain::wsi;
using slidetrain::wsi::test::TempDir;
namespace fs = std::filesystem;

namespace {

using slidetrain::test::errorOf;

/// A w x h RGB image whose pixels depend on (x, y, seed).
RgbImage pattern(int w, int h, int seed) {
  RgbImage img;
  img.width = w, img.height = h;
  img.pixels.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img.at(x, y)[c] = static_cast<uint8_t>((x * 7 + y * 13 + c * 50 + seed * 31) & 255);
  return img;
}

void png(const std::string& path, int w = 16, int h = 16, int seed = 0) {
  fs::create_directories(fs::path(path).parent_path());
  writePng(pattern(w, h, seed), path);
}

}  // namespace

TEST(PatchFolders, SplitLayoutSortedWithClassesSplitsAndIds) {
  TempDir d;
  png(d.file("train/tumor/b.png"));
  png(d.file("train/tumor/a.PNG"));
  png(d.file("train/normal/x.png"));
  png(d.file("train/normal/deeper/y.png"));  // sub-folders of a class folder belong to it
  png(d.file("valid/normal/v.png"));         // "valid" is the val split
  png(d.file("test/tumor/t.png"));
  test::writeText(d.file("train/tumor/notes.txt"), "not an image");
  png(d.file("train/tumor/.hidden.png"));
  png(d.file("test/.cache/normal/z.png"));
  const Cohort c = scanPatchFolders(d.path());
  EXPECT_TRUE(c.imageFiles);
  EXPECT_EQ(c.classes, (std::vector<std::string>{"normal", "tumor"}));
  std::vector<std::string> ids, splits;
  for (const auto& e : c.slides) ids.push_back(e.slideId), splits.push_back(e.split);
  EXPECT_EQ(ids, (std::vector<std::string>{"train/normal/deeper/y", "train/normal/x", "train/tumor/a",
                                           "train/tumor/b", "valid/normal/v", "test/tumor/t"}));
  EXPECT_EQ(splits, (std::vector<std::string>{"train", "train", "train", "train", "val", "test"}));
  EXPECT_EQ(c.slides[2].label, "tumor");
  EXPECT_EQ(c.slides[2].labelIndex, 1);
  EXPECT_EQ(c.slides[0].labelIndex, 0);
  EXPECT_TRUE(fs::path(c.slides[0].path).is_absolute());
  EXPECT_TRUE(c.slides[0].patientId.empty());
}

TEST(PatchFolders, FlatLayoutIsAllTrain) {
  TempDir d;
  png(d.file("b_class/1.jpg.png"));
  png(d.file("a_class/2.png"));
  const Cohort c = scanPatchFolders(d.path());
  ASSERT_EQ(c.slides.size(), 2u);
  EXPECT_EQ(c.classes, (std::vector<std::string>{"a_class", "b_class"}));
  for (const auto& e : c.slides) EXPECT_EQ(e.split, "train");
  EXPECT_EQ(c.slides[0].slideId, "a_class/2");
}

TEST(PatchFolders, ErrorsNameTheFolder) {
  TempDir d;
  EXPECT_NE(errorOf([&] { scanPatchFolders(d.file("missing")); }).find(d.file("missing") + "': not a folder"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { scanPatchFolders(d.path()); }).find("no class folder"), std::string::npos);
  fs::create_directories(d.file("train/tumor"));
  png(d.file("train/normal/a.png"));
  EXPECT_NE(errorOf([&] { scanPatchFolders(d.path()); })
                .find("class folder '" + d.file("train/tumor") + "' holds no .png, .jpg or .jpeg image"),
            std::string::npos);
  png(d.file("train/tumor/a.png"));
  fs::create_directories(d.file("test"));
  EXPECT_NE(errorOf([&] { scanPatchFolders(d.path()); }).find("split folder '" + d.file("test") + "' holds no class folder"),
            std::string::npos);
  png(d.file("test/tumor/a.png"));
  png(d.file("tumor/a.png"));
  EXPECT_NE(errorOf([&] { scanPatchFolders(d.path()); }).find("'tumor' sits beside the split folder"),
            std::string::npos);
  fs::remove_all(d.file("tumor"));
  png(d.file("validation/tumor/a.png"));
  png(d.file("val/tumor/a.png"));
  EXPECT_NE(errorOf([&] { scanPatchFolders(d.path()); }).find("two folders are the val split"), std::string::npos);
  fs::remove_all(d.file("val"));
  EXPECT_EQ(scanPatchFolders(d.path()).slides.size(), 4u);
}

TEST(PatchFolders, ReadImageFileConvertsToRgb8) {
  TempDir d;
  const RgbImage rgb = pattern(20, 12, 3);
  writePng(rgb, d.file("rgb.png"));
  const RgbImage back = readImageFile(d.file("rgb.png"));
  EXPECT_EQ(back.width, 20);
  EXPECT_EQ(back.height, 12);
  EXPECT_EQ(back.pixels, rgb.pixels);
  // Grey, grey + alpha, RGBA over white, 16-bit, JPEG.
  vips::VImage grey = vips::VImage::black(4, 2) + 100;
  grey.cast(VIPS_FORMAT_UCHAR).pngsave(d.file("grey.png").c_str());
  RgbImage g = readImageFile(d.file("grey.png"));
  ASSERT_EQ(g.pixels.size(), 4u * 2 * 3);
  for (uint8_t v : g.pixels) EXPECT_EQ(v, 100);
  vips::VImage rgba = (vips::VImage::black(3, 3, vips::VImage::option()->set("bands", 4)) + std::vector<double>{0, 0, 0, 0})
                          .cast(VIPS_FORMAT_UCHAR)
                          .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
  rgba.pngsave(d.file("transparent.png").c_str());
  for (uint8_t v : readImageFile(d.file("transparent.png")).pixels) EXPECT_EQ(v, 255);  // over white
  vips::VImage deep = (vips::VImage::black(2, 2, vips::VImage::option()->set("bands", 3)) + 65535)
                          .cast(VIPS_FORMAT_USHORT)
                          .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16));
  deep.pngsave(d.file("deep.png").c_str());
  for (uint8_t v : readImageFile(d.file("deep.png")).pixels) EXPECT_EQ(v, 255);
  vips::VImage::new_from_memory(const_cast<uint8_t*>(rgb.pixels.data()), rgb.pixels.size(), 20, 12, 3,
                                VIPS_FORMAT_UCHAR)
      .jpegsave(d.file("rgb.jpg").c_str());
  const RgbImage j = readImageFile(d.file("rgb.jpg"));
  EXPECT_EQ(j.width, 20);
  EXPECT_EQ(j.pixels.size(), rgb.pixels.size());
  test::writeText(d.file("broken.png"), "not a png at all");
  EXPECT_NE(errorOf([&] { readImageFile(d.file("broken.png")); }).find("cannot read image '" + d.file("broken.png") + "'"),
            std::string::npos);
}

TEST(PatchFolders, StreamReadsWholeImagesResizedToThePatchSize) {
  TempDir d;
  png(d.file("a.png"), 32, 32, 1);
  png(d.file("b.png"), 40, 24, 2);  // another size and aspect: resized to 32 x 32
  SlideOptions so;
  so.imageFile = true;
  StreamOptions o;
  o.workers = 2;
  PatchStream s({d.file("a.png"), d.file("b.png")}, o, {}, {so, so});
  std::vector<PatchRequest> batch(2);
  for (int i = 0; i < 2; ++i) batch[i].slide = i, batch[i].size = 32, batch[i].label = i, batch[i].id = i;
  s.start({batch});
  const auto b = s.next();
  ASSERT_TRUE(b);
  ASSERT_EQ(b->count(), 2u);
  const size_t px = 32 * 32 * 3;
  const RgbImage a = readImageFile(d.file("a.png"));
  const RgbImage r = resizeRgb(readImageFile(d.file("b.png")), 32, 32);
  EXPECT_TRUE(std::equal(a.pixels.begin(), a.pixels.end(), b->pixels.begin()));
  EXPECT_TRUE(std::equal(r.pixels.begin(), r.pixels.end(), b->pixels.begin() + static_cast<long>(px)));
  EXPECT_EQ(b->labels, (std::vector<int32_t>{0, 1}));
  EXPECT_FALSE(s.next());
}

TEST(PatchFolders, UnreadableImageInTheStreamNamesTheFile) {
  TempDir d;
  png(d.file("ok.png"), 16, 16);
  test::writeText(d.file("bad.png"), "truncated");
  SlideOptions so;
  so.imageFile = true;
  PatchStream s({d.file("ok.png"), d.file("bad.png")}, StreamOptions{}, {}, {so, so});
  std::vector<PatchRequest> batch(2);
  for (int i = 0; i < 2; ++i) batch[i].slide = i, batch[i].size = 16, batch[i].id = i;
  s.start({batch});
  EXPECT_NE(errorOf([&] { s.next(); }).find("cannot read image '" + d.file("bad.png") + "'"), std::string::npos);
}

TEST(PatchFolders, AugmentedBatchesDependOnlyOnTheSeed) {
  // Same seed -> same bytes for any worker count; another seed -> other bytes.
  TempDir d;
  std::vector<std::string> paths;
  for (int i = 0; i < 12; ++i) {
    paths.push_back(d.file("c/" + std::to_string(i) + ".png"));
    png(paths.back(), 24 + i, 24, i);
  }
  SlideOptions so;
  so.imageFile = true;
  const std::vector<SlideOptions> sos(paths.size(), so);
  auto run = [&](int workers, uint64_t seed) {
    AugmentOptions a;
    a.brightness = a.contrast = 0.2;
    a.rotate = 10;
    StreamOptions o;
    o.workers = workers;
    PatchStream s(paths, o, [a, seed](RgbImage& img, const PatchRequest& r) { augmentPatch(img, a, seed * 1000 + uint64_t(r.id)); },
                  sos);
    std::vector<std::vector<PatchRequest>> batches(3);
    for (int i = 0; i < 12; ++i) {
      PatchRequest r;
      r.slide = (i * 5) % 12, r.size = 24, r.id = i;
      batches[i / 4].push_back(r);
    }
    s.start(batches);
    std::vector<uint8_t> bytes;
    while (auto b = s.next()) bytes.insert(bytes.end(), b->pixels.begin(), b->pixels.end());
    return bytes;
  };
  const auto one = run(1, 7);
  EXPECT_EQ(one.size(), 12u * 24 * 24 * 3);
  EXPECT_EQ(run(3, 7), one);
  EXPECT_NE(run(3, 8), one);
}
