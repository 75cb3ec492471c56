#include <gtest/gtest.h>

#include "src/Config.h"
#include "src/Settings.h"

using slidetrain::Config;
using slidetrain::ConfigError;

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
