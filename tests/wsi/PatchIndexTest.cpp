// PatchIndex: grid geometry against a mask with a known answer, labels from annotations, the
// binary cache file (round trip and every kind of damage), fingerprints and cache names.
#include "wsi/PatchIndex.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "tests/wsi/WsiTestUtil.h"
#include "wsi/Annotations.h"
#include "wsi/Errors.h"

namespace slidetrain::wsi {
namespace {

using test::TempDir;

// boxes.tiff is 300x250 at level 0 and 150x125 at level 1. The mask (downsample 2, so one mask
// pixel per level-1 pixel) has tissue on the left 60 columns only, i.e. level-0 x < 120.
TissueMask leftTissueMask() {
  RgbImage img{150, 125, std::vector<uint8_t>(150 * 125 * 3, 240)};
  for (int y = 0; y < 125; ++y)
    for (int x = 0; x < 60; ++x) img.at(x, y)[1] = 120;  // saturated pink-ish
  TissueMaskOptions opt;
  opt.medianRadius = 0, opt.closeRadius = 0;
  return TissueMask::fromImage(img, 2.0, opt);
}

TEST(PatchIndexTest, GridKeepsOnlyPatchesOverTissue) {
  auto slide = Slide::open(test::sharedSlide("boxes.tiff"));
  const TissueMask mask = leftTissueMask();
  PatchIndexOptions opt;
  opt.level = 1, opt.size = 20, opt.stride = 10, opt.minTissue = 0.5;
  const PatchIndex index = PatchIndex::build(*slide, mask, opt, 3);
  EXPECT_DOUBLE_EQ(index.levelDownsample, 2.0);
  EXPECT_DOUBLE_EQ(index.levelZeroSize(), 40.0);
  // Level-1 columns lx in {0,10,...,50} have tissue fraction >= 0.5 (lx + 10 <= 60), rows
  // ly in {0,10,...,100} fit in 125: 6 x 11 patches.
  ASSERT_EQ(index.patches.size(), 66u);
  std::set<int64_t> xs;
  for (const auto& p : index.patches) {
    xs.insert(p.x);
    EXPECT_EQ(p.x % 20, 0);  // level-0 coordinates of a 10-px level-1 stride
    EXPECT_EQ(p.label, 3);
    EXPECT_GE(p.tissue, 0.5f);
    EXPECT_LE(p.y + 40, 250);
  }
  EXPECT_EQ(xs, (std::set<int64_t>{0, 20, 40, 60, 80, 100}));
  opt.minTissue = 0;
  EXPECT_EQ(PatchIndex::build(*slide, mask, opt, 0).patches.size(), 14u * 11u);
  opt.level = 9;
  EXPECT_THROW(PatchIndex::build(*slide, mask, opt, 0), SlideError);
  opt.level = 0, opt.size = 0;
  EXPECT_THROW(PatchIndex::build(*slide, mask, opt, 0), std::invalid_argument);
}

TEST(PatchIndexTest, AnnotationsLabelPatchCentres) {
  auto slide = Slide::open(test::sharedSlide("boxes.tiff"));
  PatchIndexOptions opt;
  opt.level = 0, opt.size = 50, opt.minTissue = 0.5;
  Annotations ann;
  AnnotationPolygon tumour;
  tumour.className = "tumor";
  tumour.rings = {{{0, 0}, {60, 0}, {60, 60}, {0, 60}}};  // holds only the centre (25, 25)
  ann.add(tumour);
  AnnotationPolygon other;
  other.className = "ink";  // a class the task does not know
  other.rings = {{{0, 60}, {60, 60}, {60, 120}, {0, 120}}};
  ann.add(other);
  auto labelOf = [](const std::string& name) { return name == "tumor" ? 1 : -1; };
  const PatchIndex index = PatchIndex::build(*slide, leftTissueMask(), opt, 0, &ann, labelOf);
  ASSERT_FALSE(index.patches.empty());
  for (const auto& p : index.patches) EXPECT_EQ(p.label, p.x == 0 && p.y == 0 ? 1 : 0);
}

PatchIndex sampleIndex() {
  PatchIndex index;
  index.slidePath = "/data/slide one.svs";
  index.fingerprint = "abc-123";
  index.options.level = 1, index.options.size = 64, index.options.stride = 32;
  index.options.minTissue = 0.25;
  index.levelDownsample = 4.000123;
  index.tissueFraction = 0.375;
  for (int i = 0; i < 100; ++i) index.patches.push_back({i * 128, i * 7 + 1, i / 100.0f, i % 3});
  return index;
}

TEST(PatchIndexTest, SaveLoadRoundTripAndCsv) {
  TempDir dir;
  const PatchIndex a = sampleIndex();
  const std::string file = dir.file("nested/cache/a.pidx");
  a.save(file);
  const PatchIndex b = PatchIndex::load(file);
  EXPECT_EQ(b.slidePath, a.slidePath);
  EXPECT_EQ(b.fingerprint, a.fingerprint);
  EXPECT_EQ(b.options.level, 1);
  EXPECT_EQ(b.options.size, 64);
  EXPECT_EQ(b.options.stride, 32);
  EXPECT_DOUBLE_EQ(b.options.minTissue, 0.25);
  EXPECT_DOUBLE_EQ(b.levelDownsample, a.levelDownsample);
  EXPECT_EQ(b.readSize, 64);  // hand-made index (readSize 0) is saved with its read side
  EXPECT_DOUBLE_EQ(b.tissueFraction, a.tissueFraction);
  ASSERT_EQ(b.patches.size(), a.patches.size());
  for (size_t i = 0; i < a.patches.size(); ++i) {
    EXPECT_EQ(b.patches[i].x, a.patches[i].x);
    EXPECT_EQ(b.patches[i].y, a.patches[i].y);
    EXPECT_EQ(b.patches[i].tissue, a.patches[i].tissue);
    EXPECT_EQ(b.patches[i].label, a.patches[i].label);
  }
  a.writeCsv(dir.file("p.csv"), "S1");
  std::ifstream in(dir.file("p.csv"));
  std::string header, first;
  std::getline(in, header);
  std::getline(in, first);
  EXPECT_EQ(header, "slide_id,x,y,level,size,tissue,label,read_size");
  EXPECT_EQ(first, "S1,0,1,1,64,0,0,64");
}

TEST(PatchIndexTest, DamagedFilesFailNamingTheFile) {
  TempDir dir;
  const std::string good = dir.file("good.pidx");
  sampleIndex().save(good);
  const auto bytes = test::readBytes(good);
  auto variant = [&](const std::string& name, std::vector<uint8_t> b) {
    const std::string f = dir.file(name);
    std::ofstream(f, std::ios::binary).write(reinterpret_cast<const char*>(b.data()),
                                             std::streamsize(b.size()));
    return f;
  };
  auto flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  auto truncated = bytes;
  truncated.resize(bytes.size() - 30);
  auto badMagic = bytes;
  badMagic[0] = 'X';
  auto badVersion = bytes;
  badVersion[8] = 99;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {variant("flipped.pidx", flipped), "flipped\\.pidx' is corrupted \\(checksum mismatch\\)"},
      {variant("short.pidx", truncated), "short\\.pidx' is corrupted"},
      {variant("magic.pidx", badMagic), "magic\\.pidx' is not a slidetrain patch index"},
      {variant("version.pidx", badVersion), "version\\.pidx' has version 99"},
      {variant("empty.pidx", {}), "empty\\.pidx' is not a slidetrain patch index"},
      {dir.file("absent.pidx"), "cannot read patch index '.*absent\\.pidx'"},
  };
  for (const auto& [file, pattern] : cases) {
    std::string message;
    try {
      PatchIndex::load(file);
    } catch (const DataError& e) {
      message = e.what();
    }
    EXPECT_TRUE(std::regex_search(message, std::regex(pattern))) << file << ": " << message;
  }
}

TEST(PatchIndexTest, FingerprintAndCachePathChangeWithTheirInputs) {
  TempDir dir;
  std::vector<uint8_t> data(300000, 7);
  auto write = [&](const std::string& name) {
    std::ofstream(dir.file(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
    return dir.file(name);
  };
  const std::string a = write("a.bin");
  EXPECT_EQ(slideFingerprint(a), slideFingerprint(a));
  const std::string fpA = slideFingerprint(a);
  data.back() = 8;  // differs only in the last byte: the tail hash must see it
  write("a.bin");
  EXPECT_NE(slideFingerprint(a), fpA);
  EXPECT_THROW(slideFingerprint(dir.file("none.bin")), SlideError);

  PatchIndexOptions o;
  TissueMaskOptions m;
  const std::string base = patchIndexCachePath("/c", "slide/1", "fp", o, m);
  EXPECT_EQ(base.rfind("/c/slide_1__fp__", 0), 0u) << base;
  std::set<std::string> paths{base};
  auto add = [&](PatchIndexOptions oo, TissueMaskOptions mm) {
    EXPECT_TRUE(paths.insert(patchIndexCachePath("/c", "slide/1", "fp", oo, mm)).second);
  };
  o.level = 1, add(o, m), o = {};
  o.size = 256, add(o, m), o = {};
  o.stride = 100, add(o, m), o = {};
  o.minTissue = 0.3, add(o, m), o = {};
  m.thumbnailMaxSide = 1024, add(o, m), m = {};
  m.threshold = 20, add(o, m), m = {};
  m.medianRadius = 3, add(o, m), m = {};
  m.closeRadius = 3, add(o, m), m = {};
  m.minComponentArea = 3, add(o, m), m = {};
  m.fillHoles = false, add(o, m), m = {};
  m.level = 2, add(o, m), m = {};
  o.targetMpp = 0.5, add(o, m), o = {};
  o.targetMagnification = 20, add(o, m), o = {};
  o.maxWhiteFraction = 0.5, add(o, m), o = {};
  o.maxBlackFraction = 0.5, add(o, m), o = {};
  const std::string png = write("mask.png");
  m.maskFile = png, add(o, m);
  data[0] = 9;  // a different user mask is a different grid
  write("mask.png");
  add(o, m), m = {};
  EXPECT_NE(base.find("__v2.pidx"), std::string::npos) << base;
  EXPECT_NE(patchIndexCachePath("/c", "slide/1", "fp2", o, m), base);
}


// Labels by area: a polygon covering 3/4 of one patch and 1/4 of its neighbour.
TEST(PatchIndexTest, AreaModeLabelsByCoveredShareAndRoiOnlyDropsOutsidePatches) {
  auto slide = Slide::open(test::sharedSlide("boxes.tiff"));
  PatchIndexOptions opt;
  opt.level = 0, opt.size = 40, opt.minTissue = 0.5;
  // Patches at x = 0, 40, 80 (tissue x < 120); the polygon spans x in [10, 50), y in [0, 40).
  Annotations ann;
  AnnotationPolygon t;
  t.className = "tumor";
  t.rings = {{{10, 0}, {50, 0}, {50, 40}, {10, 40}}};
  ann.add(t);
  auto labelOf = [](const std::string& name) { return name == "tumor" ? 1 : -1; };
  PatchIndex base = PatchIndex::build(*slide, leftTissueMask(), opt, 0);
  auto labelAt = [](const PatchIndex& idx, int64_t x, int64_t y) {
    for (const auto& p : idx.patches)
      if (p.x == x && p.y == y) return p.label;
    return -99;
  };
  LabelOptions area;
  area.mode = LabelOptions::Mode::Area;
  area.minArea = 0.5;
  PatchIndex a = base;
  a.applyAnnotations(ann, 0, labelOf, area);
  EXPECT_EQ(labelAt(a, 0, 0), 1);   // 3/4 covered
  EXPECT_EQ(labelAt(a, 40, 0), 0);  // 1/4 covered: below 0.5
  EXPECT_EQ(labelAt(a, 0, 40), 0);
  area.minArea = 0.2;
  a = base;
  a.applyAnnotations(ann, 0, labelOf, area);
  EXPECT_EQ(labelAt(a, 40, 0), 1);  // 1/4 >= 0.2
  area.minArea = 0.8;
  a = base;
  a.applyAnnotations(ann, 0, labelOf, area);
  EXPECT_EQ(labelAt(a, 0, 0), 0);  // 3/4 < 0.8
  // Centre mode: the centre (20, 20) is inside, (60, 20) is not.
  PatchIndex c = base;
  c.applyAnnotations(ann, 0, labelOf);
  EXPECT_EQ(labelAt(c, 0, 0), 1);
  EXPECT_EQ(labelAt(c, 40, 0), 0);
  EXPECT_EQ(c.patches.size(), base.patches.size());
  // An exclusion over the first patch's sample points removes its vote.
  Annotations withHole = ann;
  AnnotationPolygon hole;
  hole.className = "_2";
  hole.rings = {{{0, 0}, {40, 0}, {40, 40}, {0, 40}}};
  withHole.add(hole);
  area.minArea = 0.2;
  a = base;
  a.applyAnnotations(withHole, 0, labelOf, area);
  EXPECT_EQ(labelAt(a, 0, 0), 0);
  EXPECT_EQ(labelAt(a, 40, 0), 1);
  // ROI only: just the patch whose centre is in the polygon remains.
  LabelOptions roi;
  roi.roiOnly = true;
  PatchIndex r = base;
  r.applyAnnotations(ann, 0, labelOf, roi);
  ASSERT_EQ(r.patches.size(), 1u);
  EXPECT_EQ(r.patches[0].x, 0);
  EXPECT_EQ(r.patches[0].label, 1);
  LabelOptions bad;
  bad.minArea = 0;
  EXPECT_THROW(r.applyAnnotations(ann, 0, labelOf, bad), std::invalid_argument);
}

// Background filters: the thumbnail is white on the right half of the tissue, black at the
// bottom; the mask counts everything as tissue (min_tissue 0).
TEST(PatchIndexTest, WhiteAndBlackFiltersSkipBackgroundPatches) {
  auto slide = Slide::open(test::sharedSlide("boxes.tiff"));
  RgbImage img{150, 125, std::vector<uint8_t>(150 * 125 * 3, 0)};
  for (int y = 0; y < 125; ++y)
    for (int x = 0; x < 150; ++x) {
      uint8_t* p = img.at(x, y);
      if (y >= 100) p[0] = p[1] = p[2] = 10;                 // black band, level-0 y >= 200
      else if (x >= 75) p[0] = p[1] = p[2] = 240;            // white, level-0 x >= 150
      else p[0] = 200, p[1] = 100, p[2] = 160;               // stained
    }
  TissueMaskOptions mo;
  mo.medianRadius = 0, mo.closeRadius = 0;
  const TissueMask mask = TissueMask::fromImage(img, 2.0, mo);
  EXPECT_NEAR(mask.whiteFraction(150, 0, 50, 50), 1.0, 1e-9);
  EXPECT_NEAR(mask.whiteFraction(125, 0, 50, 50), 0.5, 1e-9);
  EXPECT_NEAR(mask.blackFraction(0, 200, 50, 50), 1.0, 1e-9);
  EXPECT_NEAR(mask.blackFraction(0, 0, 50, 50), 0.0, 1e-9);
  EXPECT_NEAR(mask.whiteFraction(150, 0, 50, 50, 245), 0.0, 1e-9);  // threshold is used
  PatchIndexOptions opt;
  opt.level = 0, opt.size = 50, opt.minTissue = 0;
  const PatchIndex all = PatchIndex::build(*slide, mask, opt, 0);
  ASSERT_EQ(all.patches.size(), 6u * 5u);
  opt.maxWhiteFraction = 0.5;
  const PatchIndex noWhite = PatchIndex::build(*slide, mask, opt, 0);
  for (const auto& p : noWhite.patches) {
    if (p.y < 200) {
      EXPECT_LT(p.x, 150);
    }
  }
  EXPECT_EQ(noWhite.patches.size(), 3u * 4u + 6u);  // x in {0,50,100} above; the black row stays
  opt.maxBlackFraction = 0.5;
  const PatchIndex neither = PatchIndex::build(*slide, mask, opt, 0);
  for (const auto& p : neither.patches) {
    EXPECT_LT(p.y, 200);
    EXPECT_LT(p.x, 150);
  }
  EXPECT_EQ(neither.patches.size(), 3u * 4u);
  opt.whiteThreshold = 250;  // nothing is that white: the white patches come back
  EXPECT_EQ(PatchIndex::build(*slide, mask, opt, 0).patches.size(), 6u * 4u);
  opt.maxWhiteFraction = 1.5;
  EXPECT_THROW(opt.validate(), std::invalid_argument);
}

}  // namespace
}  // namespace slidetrain::wsi
