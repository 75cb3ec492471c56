#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "src/data/ClassOrder.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

TEST(Settings, ClassOrderComesFromDataClassesAndIsRecorded) {
  const std::string dir = (fs::temp_directory_path() / ("slidetrain_classes_" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  std::ofstream(dir + "/cohort.csv") << "slide_id,path,label\nA,a.svs,tumor\nB,b.svs,normal\n";
  Settings c = Settings::defaults({"cohort=" + dir + "/cohort.csv"});
  auto readCohort = [](const Settings& s) { return slidetrain::readCohort(s.run, s.data); };
  EXPECT_EQ(readCohort(c).classes, (std::vector<std::string>{"normal", "tumor"}));
  EXPECT_EQ(classOrderLine(readCohort(c)), "classes: normal, tumor (positive: tumor)");
  c = c.with({"data.classes=[tumor, normal]"});
  const wsi::Cohort k = readCohort(c);
  EXPECT_EQ(k.classes, (std::vector<std::string>{"tumor", "normal"}));
  EXPECT_EQ(classOrderLine(k), "classes: tumor, normal (positive: normal)");
  // Recorded in the resolved config, so run_dir/config.yaml keeps the order.
  const Settings d = Settings::defaults({"cohort=" + dir + "/cohort.csv"});
  const Settings recorded = Settings::parse(d.withClasses(readCohort(d).classes).yaml(), "config.yaml");
  EXPECT_EQ(recorded.data.classes, (std::vector<std::string>{"normal", "tumor"}));
  c = c.with({"data.classes=[tumor, benign]"});
  try {
    readCohort(c);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.classes"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace slidetrain
