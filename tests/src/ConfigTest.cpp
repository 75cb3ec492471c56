#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "src/Config.h"
#include "src/Settings.h"

namespace fs = std::filesystem;
using slidetrain::Config;
using slidetrain::ConfigError;
using slidetrain::classOrderLine;
using slidetrain::readCohort;
using slidetrain::withClassOrder;
namespace wsi = slidetrain::wsi;

namespace {

std::string errorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST(Config, DefaultsCoverEveryKey) {
  Config c;
  EXPECT_EQ(c.getInt("train.epochs"), 3);
  EXPECT_EQ(c.getString("optimizer.name"), "sgd");
  EXPECT_FALSE(c.getOptFloat("tiling.mpp_override").has_value());
  EXPECT_EQ(c.getString("model.pretrained"), "");
  EXPECT_EQ(c.getFloatList("data.mean").size(), 3u);
}

TEST(Config, ParsesNestedSections) {
  Config c = Config::parse("train:\n  epochs: 7\n  batch_size: 32\noptimizer:\n  lr: 0.5\n", "t.yaml");
  EXPECT_EQ(c.getInt("train.epochs"), 7);
  EXPECT_EQ(c.getInt("train.batch_size"), 32);
  EXPECT_DOUBLE_EQ(c.getFloat("optimizer.lr"), 0.5);
}

TEST(Config, UnknownKeyNamesDottedKeyAndLine) {
  const std::string e = errorOf([] { Config::parse("seed: 1\ntrain:\n  batchsize: 32\n", "x.yaml"); });
  EXPECT_NE(e.find("x.yaml line 3"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'train.batchsize'"), std::string::npos) << e;
  EXPECT_NE(e.find("train.batch_size"), std::string::npos) << e;  // the hint lists the real key
}

TEST(Config, UnknownSectionRejected) {
  const std::string e = errorOf([] { Config::parse("trian:\n  epochs: 2\n", "x.yaml"); });
  EXPECT_NE(e.find("unknown section 'trian'"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesKeyValueAndLine) {
  const std::string e = errorOf([] { Config::parse("train:\n  batch_size: abc\n", "x.yaml"); });
  EXPECT_NE(e.find("x.yaml line 2"), std::string::npos) << e;
  EXPECT_NE(e.find("train.batch_size: expected integer, got \"abc\""), std::string::npos) << e;
}

TEST(Config, BoundsAndChoicesChecked) {
  EXPECT_NE(errorOf([] { Config::parse("train:\n  epochs: 0\n", "x"); }).find("train.epochs"), std::string::npos);
  const std::string e = errorOf([] { Config::parse("optimizer:\n  name: sgdd\n", "x"); });
  EXPECT_NE(e.find("expected one of"), std::string::npos) << e;
  EXPECT_NE(errorOf([] { Config::parse("augment:\n  flips: maybe\n", "x"); }).find("augment.flips"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Config::parse("data:\n  mean: 3\n", "x"); }).find("list of numbers"),
            std::string::npos);
}

TEST(Config, OverridesGoThroughTheSameChecks) {
  Config c;
  c.applyOverrides({"train.epochs=9", "optimizer.lr=1e-3", "schedule.milestones=[0.3, 0.6]"});
  EXPECT_EQ(c.getInt("train.epochs"), 9);
  EXPECT_DOUBLE_EQ(c.getFloat("optimizer.lr"), 1e-3);
  EXPECT_EQ(c.getFloatList("schedule.milestones").size(), 2u);
  EXPECT_NE(errorOf([&] { c.applyOverrides({"train.epoch=2"}); }).find("override 'train.epoch=2'"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { c.applyOverrides({"noequals"}); }).find("expected key=value"), std::string::npos);
}

TEST(Config, MissingFileNamed) {
  EXPECT_NE(errorOf([] { Config::load("/nonexistent/c.yaml"); }).find("/nonexistent/c.yaml"),
            std::string::npos);
}

TEST(Config, ShippedConfigsLoadAndRoundTrip) {
  for (const char* f : {"configs/demo.yaml"}) {
    Config c = Config::load(std::string(SLIDETRAIN_SOURCE_DIR) + "/" + f);
    Config again = Config::parse(c.toYaml(), "roundtrip");
    EXPECT_EQ(again.toYaml(), c.toYaml()) << f;
  }
}

TEST(Config, ResolvedYamlHoldsEveryKeyAndReproducesTheConfig) {
  // run_dir/config.yaml is this text: `slidetrain train -c run_dir/config.yaml` must reproduce
  // the run, so every key must be there with its value, overrides included.
  Config c = Config::load(std::string(SLIDETRAIN_SOURCE_DIR) + "/configs/demo.yaml");
  c.applyOverrides({"train.batch_size=48", "optimizer.lr=0.0125", "predict.aggregation=mean",
                    "train.early_stopping.metric=val_auc", "data.mean=[0.5, 0.5, 0.5]"});
  const std::string y = c.toYaml();
  for (const auto& s : slidetrain::configSchema()) {
    const std::string leaf = s.key.substr(s.key.rfind('.') + 1);
    EXPECT_NE(y.find(leaf + ":"), std::string::npos) << s.key << " missing from:\n" << y;
  }
  const Config again = Config::parse(y, "config.yaml");
  EXPECT_EQ(again.getInt("train.batch_size"), 48);
  EXPECT_EQ(again.getFloat("optimizer.lr"), 0.0125);
  EXPECT_EQ(again.getString("predict.aggregation"), "mean");
  EXPECT_EQ(again.getString("train.early_stopping.metric"), "val_auc");
  EXPECT_EQ(again.getFloatList("data.mean"), (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(again.getString("model.name"), "small_cnn");  // from demo.yaml
  EXPECT_EQ(again.toYaml(), y);
}

TEST(Settings, ClassOrderComesFromDataClassesAndIsRecorded) {
  const std::string dir = (fs::temp_directory_path() / ("slidetrain_classes_" + std::to_string(getpid()))).string();
  fs::create_directories(dir);
  std::ofstream(dir + "/cohort.csv") << "slide_id,path,label\nA,a.svs,tumor\nB,b.svs,normal\n";
  Config c;
  c.applyOverrides({"cohort=" + dir + "/cohort.csv"});
  EXPECT_EQ(readCohort(c).classes, (std::vector<std::string>{"normal", "tumor"}));
  EXPECT_EQ(classOrderLine(readCohort(c)), "classes: normal, tumor (positive: tumor)");
  c.applyOverrides({"data.classes=[tumor, normal]"});
  const wsi::Cohort k = readCohort(c);
  EXPECT_EQ(k.classes, (std::vector<std::string>{"tumor", "normal"}));
  EXPECT_EQ(classOrderLine(k), "classes: tumor, normal (positive: normal)");
  // Recorded in the resolved config, so run_dir/config.yaml keeps the order.
  Config d;
  d.applyOverrides({"cohort=" + dir + "/cohort.csv"});
  const Config recorded = Config::parse(withClassOrder(d, readCohort(d)).toYaml(), "config.yaml");
  EXPECT_EQ(recorded.getStringList("data.classes"), (std::vector<std::string>{"normal", "tumor"}));
  c.applyOverrides({"data.classes=[tumor, benign]"});
  try {
    readCohort(c);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("data.classes"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Config, OverridingACopyLeavesTheOriginalAlone) {
  // cv derives each fold's config from the run's (run_dir=.../fold_k); YAML nodes are references,
  // so a shallow copy used to write the fold's values into the original too.
  Config a;
  a.applyOverrides({"run_dir=runs/x", "train.epochs=3"});
  Config b = a;
  b.applyOverrides({"run_dir=runs/x/fold_0", "train.epochs=7", "data.mean=[0.1, 0.2, 0.3]"});
  EXPECT_EQ(a.getString("run_dir"), "runs/x");
  EXPECT_EQ(a.getInt("train.epochs"), 3);
  EXPECT_EQ(a.getFloatList("data.mean"), (std::vector<double>{0.485, 0.456, 0.406}));
  Config c;
  c = b;
  c.applyOverrides({"train.epochs=9"});
  EXPECT_EQ(b.getInt("train.epochs"), 7);
  EXPECT_EQ(c.getString("run_dir"), "runs/x/fold_0");
}

TEST(Config, SchemaMarkdownListsEveryKey) {
  const std::string md = Config::schemaMarkdown();
  for (const auto& s : slidetrain::configSchema())
    EXPECT_NE(md.find("`" + s.key + "`"), std::string::npos) << s.key;
}

TEST(Settings, InferenceUsesTheStreamAndStainSettingsOfTraining) {
  Config c;
  c.applyOverrides({"augment.stain_norm=reinhard", "augment.reinhard_mean=[60, 20, -10]",
                    "data.direct_reads=false", "data.workers=3", "predict.batch_size=7",
                    "augment.hed=0.1"});
  const slidetrain::InferenceOptions io = slidetrain::inferenceOptionsFromConfig(c, 1);
  EXPECT_EQ(io.batchSize, 7);
  EXPECT_EQ(io.stream.workers, 3);
  EXPECT_FALSE(io.stream.directReads);
  EXPECT_EQ(io.stainNorm, slidetrain::wsi::StainNorm::Reinhard);
  EXPECT_DOUBLE_EQ(io.reinhardMean[0], 60);
  Config plain;
  EXPECT_EQ(slidetrain::inferenceOptionsFromConfig(plain, 1).stainNorm, slidetrain::wsi::StainNorm::None);
}

TEST(Settings, ValidateSettingsRejectsBadCrossKeyValues) {
  Config c;
  c.applyOverrides({"data.mean=[0.5, 0.5]"});
  EXPECT_THROW(slidetrain::validateSettings(c), ConfigError);
}
