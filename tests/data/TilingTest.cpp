// Tiling (src/Tiling.*): the cache is reused (not rebuilt) on a second call, cached slides still
// report their tissue share and get a QC picture, bad slides follow on_bad_slide and are listed
// with reasons, ASAP XML annotations and ROI-only tiling, user masks from tissue.mask_dir, a
// weak-label synthetic cohort's patches taking their slide's label.
#include "src/data/Tiling.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <vips/vips8>

#include <filesystem>
#include <fstream>

#include "wsi/SynthCohort.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

class TilingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = "/tmp/tiling_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = new std::string(tmpl);
    wsi::SynthOptions o;
    o.numSlides = 2, o.width = 512, o.height = 384, o.seed = 3, o.testFraction = 0;
    o.tumorFraction = 0.5;
    wsi::synthesizeCohort(*root_ + "/cohort", o);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*root_, ec);
    delete root_;
  }
  void SetUp() override {
    work_ = *root_ + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(work_);
    fs::create_directories(work_);
  }
  Settings config(std::vector<std::string> extra = {}) const {
    std::vector<std::string> o = {"cohort=" + *root_ + "/cohort/cohort.csv",
                                  "cache_dir=" + work_ + "/cache", "tiling.patch_size=64",
                                  "tiling.threads=1", "tiling.min_tissue=0.5"};
    o.insert(o.end(), extra.begin(), extra.end());
    return Settings::defaults(o);
  }
  static std::vector<fs::path> cacheFiles(const std::string& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
    return out;
  }
  static std::string* root_;
  std::string work_;
};
std::string* TilingTest::root_ = nullptr;

TEST_F(TilingTest, SecondCallReadsTheCacheInsteadOfRebuilding) {
  const Settings cfg = config();
  const auto cohort = wsi::Cohort::read(cfg.run.cohort);
  const TilingSettings s = cfg.tiling;
  const std::string qc = work_ + "/qc";
  const SlideTiling first = tileSlide(cohort, 0, s, qc);
  EXPECT_FALSE(first.fromCache);
  ASSERT_FALSE(first.index.patches.empty());
  EXPECT_GT(first.tissuePercent, 5);
  const auto files = cacheFiles(work_ + "/cache");
  ASSERT_EQ(files.size(), 1u);
  const auto mtime = fs::last_write_time(files[0]);
  EXPECT_TRUE(fs::exists(qc + "/" + cohort.slides[0].slideId + "_tissue.png"));
  fs::remove_all(qc);

  const SlideTiling second = tileSlide(cohort, 0, s, qc);
  EXPECT_TRUE(second.fromCache);
  EXPECT_EQ(fs::last_write_time(files[0]), mtime);  // read, not rewritten
  EXPECT_EQ(cacheFiles(work_ + "/cache").size(), 1u);
  EXPECT_DOUBLE_EQ(second.tissuePercent, first.tissuePercent);  // stored in the index
  ASSERT_EQ(second.index.patches.size(), first.index.patches.size());
  for (size_t i = 0; i < first.index.patches.size(); ++i) {
    EXPECT_EQ(second.index.patches[i].x, first.index.patches[i].x);
    EXPECT_EQ(second.index.patches[i].y, first.index.patches[i].y);
    EXPECT_EQ(second.index.patches[i].label, first.index.patches[i].label);
  }
  // A fresh run folder still gets its QC picture from a cached slide.
  EXPECT_TRUE(fs::exists(qc + "/" + cohort.slides[0].slideId + "_tissue.png"));
  // Another target resolution is another cache entry, with its own level and read size.
  const TilingSettings t = config({"tiling.target_mpp=0.75"}).tiling;
  const SlideTiling third = tileSlide(cohort, 0, t, "");
  EXPECT_FALSE(third.fromCache);
  EXPECT_EQ(third.index.readSize, 96);
  EXPECT_EQ(cacheFiles(work_ + "/cache").size(), 2u);
}

TEST_F(TilingTest, CachedPatchesTakeTheCohortsLabelOfNow) {
  // The cache is keyed by slide and tiling parameters, not by the label: after the labels of two
  // un-annotated slides are swapped in cohort.csv, a cached index must not keep the old label.
  const Settings cfg = config({"tiling.use_annotations=false"});
  wsi::Cohort cohort = wsi::Cohort::read(cfg.run.cohort);
  const TilingSettings s = cfg.tiling;
  ASSERT_NE(cohort.slides[0].labelIndex, cohort.slides[1].labelIndex);
  const SlideTiling before = tileSlide(cohort, 0, s, "");
  ASSERT_FALSE(before.index.patches.empty());
  EXPECT_EQ(before.index.patches.front().label, cohort.slides[0].labelIndex);
  std::swap(cohort.slides[0].label, cohort.slides[1].label);
  std::swap(cohort.slides[0].labelIndex, cohort.slides[1].labelIndex);
  const SlideTiling after = tileSlide(cohort, 0, s, "");
  EXPECT_TRUE(after.fromCache);
  for (const auto& p : after.index.patches)
    ASSERT_EQ(p.label, cohort.slides[0].labelIndex) << "a cached patch kept the old label";
}

TEST_F(TilingTest, SlidesWithoutPatchesAreReportedWithTheReason) {
  // What users hand us beyond brightfield RGB opens through libvips but gave zero patches with no
  // word: 16-bit greyscale, multi-band (multiplex) stacks, multi-page files (OME-TIFF series).
  // Made here from a synthetic H&E slide with libvips rather than shipped.
  const auto good = wsi::Cohort::read(*root_ + "/cohort/cohort.csv").slides[0];
  vips::VImage he = vips::VImage::new_from_file(good.path.c_str());
  const std::string grey16 = work_ + "/grey16.tif", multiband = work_ + "/multiplex.tif",
                    pages = work_ + "/series.tif";
  he.colourspace(VIPS_INTERPRETATION_GREY16).tiffsave(grey16.c_str(),
      vips::VImage::option()->set("tile", true)->set("pyramid", true));
  vips::VImage u16 = (he.extract_band(0) * 250).cast(VIPS_FORMAT_USHORT);
  u16.bandjoin(std::vector<vips::VImage>{u16, u16, u16, u16})
      .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND))
      .tiffsave(multiband.c_str(), vips::VImage::option()->set("tile", true));
  // Two pages of the slide's size, the first blank (page 0 is all that is read).
  vips::VImage blank = (he * 0 + 255).cast(VIPS_FORMAT_UCHAR);
  vips::VImage stack = blank.join(he, VIPS_DIRECTION_VERTICAL);
  stack.set("page-height", he.height());
  stack.tiffsave(pages.c_str());
  const std::string csv = work_ + "/cohort.csv";
  std::ofstream(csv) << "slide_id,path,label\ngrey16," << grey16 << ",tumor\nmultiplex," << multiband
                     << ",tumor\nseries," << pages << ",normal\nfine," << good.path << ",normal\n";
  const auto cohort = wsi::Cohort::read(csv);
  const TilingSettings skip = config({"cohort=" + csv, "on_bad_slide=skip"}).tiling;
  const auto results = tileCohort(cohort, {0, 1, 2, 3}, skip, /*progress=*/false);
  ASSERT_EQ(results.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(results[i].ok);
    EXPECT_TRUE(results[i].index.patches.empty()) << cohort.slides[i].slideId;
  }
  EXPECT_NE(results[0].noPatches.find("1 sample of 16 bits (greyscale)"), std::string::npos) << results[0].noPatches;
  EXPECT_NE(results[1].noPatches.find("samples of 16 bits"), std::string::npos) << results[1].noPatches;
  EXPECT_NE(results[2].noPatches.find("2 full-size pages"), std::string::npos) << results[2].noPatches;
  EXPECT_NE(results[2].noPatches.find("no tissue at this threshold"), std::string::npos) << results[2].noPatches;
  EXPECT_TRUE(results[3].noPatches.empty());
  EXPECT_FALSE(results[3].index.patches.empty());
  const std::string summary = tilingSummary(cohort, results, skip.cacheDir);
  for (const char* id : {"grey16", "multiplex", "series"})
    EXPECT_NE(summary.find(std::string("no patches: ") + id + ": "), std::string::npos) << summary;
  EXPECT_NE(summary.find("3 without patches"), std::string::npos) << summary;
  // on_bad_slide=fail: a slide without patches fails the run, naming it and the reason.
  const TilingSettings fail = config({"cohort=" + csv, "on_bad_slide=fail"}).tiling;
  try {
    tileCohort(cohort, {0}, fail, false);
    ADD_FAILURE() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("grey16 yields no patches: the image has 1 sample of 16 bits"),
              std::string::npos) << e.what();
  }
}

TEST_F(TilingTest, BadSlidesAreSkippedWithReasonsOrFailTheRun) {
  const auto good = wsi::Cohort::read(*root_ + "/cohort/cohort.csv").slides[0];
  const std::string csv = work_ + "/cohort.csv";
  std::ofstream(csv) << "slide_id,path,label,split\nbroken,missing.svs,tumor,train\n"
                     << "fine," << good.path << ",normal,train\n";
  const auto cohort = wsi::Cohort::read(csv);
  TilingSettings s = config({"cohort=" + csv, "on_bad_slide=skip"}).tiling;
  const auto results = tileCohort(cohort, {0, 1}, s, /*progress=*/false);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results[0].ok);
  EXPECT_NE(results[0].error.find("missing.svs"), std::string::npos) << results[0].error;
  EXPECT_TRUE(results[1].ok);
  const std::string summary = tilingSummary(cohort, results, s.cacheDir);
  EXPECT_NE(summary.find("skipped: broken (" + work_ + "/missing.svs): "), std::string::npos)
      << summary;
  EXPECT_NE(summary.find("tiled 1/2 slides (0 from cache)"), std::string::npos) << summary;
  EXPECT_NE(summary.find("1 skipped"), std::string::npos) << summary;
  s = config({"cohort=" + csv, "on_bad_slide=fail"}).tiling;
  try {
    tileCohort(cohort, {0, 1}, s, false);
    FAIL() << "on_bad_slide=fail must rethrow";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("missing.svs"), std::string::npos) << e.what();
  }
}

TEST_F(TilingTest, AsapXmlAnnotationsLabelAndLimitToRois) {
  // A private copy of the cohort with an ASAP XML file for the first slide.
  const auto base = wsi::Cohort::read(*root_ + "/cohort/cohort.csv");
  const auto& e = base.slides[0];
  fs::create_directories(work_ + "/annotations");
  const std::string csv = work_ + "/cohort.csv";
  std::ofstream(csv) << "slide_id,path,label,split\n"
                     << e.slideId << "," << e.path << ",normal,train\n"
                     << "other," << base.slides[1].path << ",tumor,train\n";
  std::ofstream(work_ + "/annotations/" + e.slideId + ".xml")
      << "<ASAP_Annotations><Annotations>"
         "<Annotation Name=\"a\" Type=\"Polygon\" PartOfGroup=\"_1\"><Coordinates>"
         "<Coordinate Order=\"0\" X=\"0\" Y=\"0\"/><Coordinate Order=\"1\" X=\"512\" Y=\"0\"/>"
         "<Coordinate Order=\"2\" X=\"512\" Y=\"192\"/><Coordinate Order=\"3\" X=\"0\" Y=\"192\"/>"
         "</Coordinates></Annotation></Annotations></ASAP_Annotations>";
  const auto cohort = wsi::Cohort::read(csv);
  EXPECT_EQ(findAnnotationFile(work_ + "/annotations", e.slideId),
            work_ + "/annotations/" + e.slideId + ".xml");
  const TilingSettings all = config({"cohort=" + csv}).tiling;
  const SlideTiling whole = tileSlide(cohort, 0, all, "");
  EXPECT_EQ(whole.annotationFile, work_ + "/annotations/" + e.slideId + ".xml");
  size_t top = 0;
  for (const auto& p : whole.index.patches) {
    // CAMELYON16's "_1" group is "Tumor", matched case-insensitively to the cohort's "tumor".
    EXPECT_EQ(p.label, p.y + 32 < 192 ? 1 : 0) << p.x << "," << p.y;
    top += p.y + 32 < 192;
  }
  ASSERT_GT(top, 0u);
  ASSERT_LT(top, whole.index.patches.size());
  const TilingSettings roi =
      config({"cohort=" + csv, "tiling.roi_only=true"}).tiling;
  const SlideTiling inside = tileSlide(cohort, 0, roi, "");
  EXPECT_TRUE(inside.fromCache);  // ROI filtering happens after the cache: same grid file
  EXPECT_EQ(inside.index.patches.size(), top);
  // A slide without annotations is tiled whole under roi_only.
  EXPECT_EQ(tileSlide(cohort, 1, roi, "").index.patches.size(),
            tileSlide(cohort, 1, all, "").index.patches.size());
}

TEST_F(TilingTest, WeakLabelCohortPatchesInheritTheSlideLabel) {
  // synth.tumor_tissue_share writes no annotations: whatever tiling.use_annotations and
  // tiling.roi_only say, every patch of a tumour slide is "tumor", every other one "normal".
  wsi::SynthOptions o;
  o.numSlides = 2, o.width = 1024, o.height = 768, o.seed = 5, o.testFraction = 0;
  o.tumorFraction = 0.5, o.tumorTissueShare = 0.05;
  const auto slides = wsi::synthesizeCohort(work_ + "/weak", o);
  ASSERT_FALSE(slides[0].tumour.empty() && slides[1].tumour.empty());  // one slide has tumour
  const std::string csv = work_ + "/weak/cohort.csv";
  const auto cohort = wsi::Cohort::read(csv);
  ASSERT_EQ(cohort.classes, (std::vector<std::string>{"normal", "tumor"}));
  for (const char* annotations : {"true", "false"}) {
    const TilingSettings s = config({"cohort=" + csv, std::string("tiling.use_annotations=") + annotations,
                                     "tiling.roi_only=true"}).tiling;
    for (size_t i = 0; i < cohort.slides.size(); ++i) {
      SCOPED_TRACE(cohort.slides[i].slideId + " use_annotations=" + annotations);
      const SlideTiling t = tileSlide(cohort, i, s, "");
      EXPECT_TRUE(t.annotationFile.empty());
      ASSERT_GT(t.index.patches.size(), 20u);
      for (const auto& p : t.index.patches) ASSERT_EQ(p.label, cohort.slides[i].labelIndex);
    }
  }
}

TEST_F(TilingTest, MaskDirPngReplacesOtsu) {
  const auto cohort = wsi::Cohort::read(*root_ + "/cohort/cohort.csv");
  const std::string masks = work_ + "/masks";
  fs::create_directories(masks);
  std::vector<uint8_t> px(32 * 24, 0);
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 8; ++x) px[y * 32 + x] = 255;  // left quarter
  vips::VImage::new_from_memory(px.data(), px.size(), 32, 24, 1, VIPS_FORMAT_UCHAR)
      .pngsave((masks + "/" + cohort.slides[0].slideId + ".png").c_str());
  const TilingSettings s =
      config({"tissue.mask_dir=" + masks, "tiling.min_tissue=1"}).tiling;
  const SlideTiling r = tileSlide(cohort, 0, s, "");
  EXPECT_TRUE(r.userMask);
  EXPECT_NEAR(r.tissuePercent, 25, 1e-6);
  // 64-px patches inside x < 128: 2 columns x 6 rows.
  EXPECT_EQ(r.index.patches.size(), 12u);
  for (const auto& p : r.index.patches) EXPECT_LT(p.x + 64, 129);
  EXPECT_FALSE(tileSlide(cohort, 1, s, "").userMask);  // no PNG: Otsu
  EXPECT_THROW(config({"tissue.mask_dir=" + work_ + "/none"}).tiling,
               ConfigError);
}

}  // namespace
}  // namespace slidetrain
