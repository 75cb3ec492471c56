// data.source: patch_folders above the wsi layer: the settings, class order from data.classes
// (a class folder it lacks is named), and prepareSplit's one sample per image.
#include <filesystem>

#include <gtest/gtest.h>
#include <torch/nn/module.h>  // TrainTestUtil.h uses it

#include "src/data/ClassOrder.h"
#include "src/data/SplitData.h"
#include "tests/ErrorOf.h"
#include "tests/train/TrainTestUtil.h"
#include "wsi/ImageIo.h"

namespace slidetrain {
namespace {

using slidetrain::test::errorOf;

namespace fs = std::filesystem;

struct Folders {
  std::string root;
  Folders() {
    root = std::string(SLIDETRAIN_BINARY_DIR) + "/test_tmp/patch_folder_source_" + std::to_string(getpid());
    fs::remove_all(root);
    wsi::RgbImage img;
    img.width = img.height = 8;
    img.pixels.assign(8 * 8 * 3, 90);
    for (const char* f : {"train/normal/a.png", "train/normal/b.png", "train/tumor/c.png", "test/tumor/d.png",
                          "test/normal/e.png"}) {
      fs::create_directories((fs::path(root) / f).parent_path());
      wsi::writePng(img, (fs::path(root) / f).string());
    }
  }
  ~Folders() { fs::remove_all(root); }
};

Settings settings(const std::string& root, const std::vector<std::string>& more = {}) {
  std::vector<std::string> o{"data.source=patch_folders", "data.patch_folders=" + root, "tiling.patch_size=32"};
  o.insert(o.end(), more.begin(), more.end());
  return Settings::defaults(o);
}

TEST(PatchFolderSource, SettingsNeedAFolder) {
  EXPECT_NE(errorOf([] { Settings::defaults({"data.source=patch_folders"}); }).find("data.patch_folders: empty"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Settings::defaults({"data.source=tiles"}); }).find("data.source"), std::string::npos);
  EXPECT_EQ(Settings::defaults().data.source, "slides");
}

TEST(PatchFolderSource, ClassOrderFollowsDataClasses) {
  Folders f;
  Settings s = settings(f.root, {"data.classes=[tumor, normal]"});
  const wsi::Cohort c = readCohort(s.run, s.data);
  EXPECT_TRUE(c.imageFiles);
  EXPECT_EQ(c.classes, (std::vector<std::string>{"tumor", "normal"}));
  for (const auto& e : c.slides) EXPECT_EQ(e.labelIndex, e.label == "tumor" ? 0 : 1) << e.slideId;
  // Without data.classes: sorted folder names.
  s = settings(f.root);
  EXPECT_EQ(readCohort(s.run, s.data).classes, (std::vector<std::string>{"normal", "tumor"}));
}

TEST(PatchFolderSource, ClassFolderMissingFromDataClassesIsNamed) {
  Folders f;
  const Settings s = settings(f.root, {"data.classes=[normal, other]"});
  const std::string m = errorOf([&] { readCohort(s.run, s.data); });
  EXPECT_NE(m.find("does not list the class folder '" + (fs::path(f.root) / "train" / "tumor").string() + "'"),
            std::string::npos) << m;
  // A class of data.classes without a folder: named like a class no slide has.
  const Settings s2 = settings(f.root, {"data.classes=[normal, tumor, other]"});
  EXPECT_NE(errorOf([&] { readCohort(s2.run, s2.data); }).find("'other'"), std::string::npos);
}

TEST(PatchFolderSource, OneSamplePerImageOfTheSplit) {
  Folders f;
  const Settings s = settings(f.root, {"data.classes=[normal, tumor]"});
  const wsi::Cohort c = readCohort(s.run, s.data);
  testutil::LocalComm comm;
  const SplitData train = prepareSplit(s.tiling, c, "train", comm);
  ASSERT_EQ(train.samples.size(), 3u);
  EXPECT_EQ(train.slideIds, (std::vector<std::string>{"train/normal/a", "train/normal/b", "train/tumor/c"}));
  for (size_t i = 0; i < 3; ++i) {
    const auto& r = train.samples[i];
    EXPECT_EQ(r.slide, static_cast<int32_t>(i));
    EXPECT_EQ(r.id, static_cast<int64_t>(i));
    EXPECT_EQ(r.size, 32);
    EXPECT_EQ(r.x, 0);
    EXPECT_EQ(r.label, i < 2 ? 0 : 1);
    EXPECT_TRUE(train.slideOptions[i].imageFile);
  }
  EXPECT_EQ(prepareSplit(s.tiling, c, "test", comm).samples.size(), 2u);
  EXPECT_TRUE(prepareSplit(s.tiling, c, "val", comm).samples.empty());
}

}  // namespace
}  // namespace slidetrain
