#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "src/config/Config.h"
#include "src/config/Settings.h"

namespace fs = std::filesystem;
using slidetrain::Config;
using slidetrain::ConfigError;
using slidetrain::Settings;
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
  for (const char* f : {"configs/demo.yaml", "configs/weak.yaml"}) {
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

TEST(Settings, SectionsHoldTheSchemaDefaultsAndOverrides) {
  const Settings d = Settings::defaults();
  EXPECT_EQ(d.run.runDir, "runs/default");
  EXPECT_EQ(d.model.name, "small_cnn");
  EXPECT_EQ(d.train.batchSize, 64);
  EXPECT_EQ(d.tiling.index.size, 224);
  EXPECT_FALSE(d.optimizer.momentum.has_value());
  EXPECT_TRUE(d.data.classes.empty());
  const Settings o = d.with({"train.early_stopping.patience=4", "optimizer.momentum=0.8",
                             "tiling.label_mode=area", "on_bad_slide=skip", "augment.stain_norm=reinhard"});
  EXPECT_EQ(o.train.earlyStopping.patience, 4);
  EXPECT_DOUBLE_EQ(*o.optimizer.momentum, 0.8);
  EXPECT_EQ(o.tiling.labels.mode, slidetrain::wsi::LabelOptions::Mode::Area);
  EXPECT_TRUE(o.run.skipBadSlides && o.tiling.skipBadSlides);
  EXPECT_EQ(o.augment.stainNorm, slidetrain::wsi::StainNorm::Reinhard);
  EXPECT_EQ(d.train.earlyStopping.patience, 0);  // `with` copies
  EXPECT_EQ(o.changedKeys().size(), 5u) << ::testing::PrintToString(o.changedKeys());
}

TEST(Settings, ClassesAreRecordedInTheResolvedYaml) {
  const Settings s = Settings::defaults().withClasses({"normal", "it's"});
  EXPECT_EQ(s.data.classes, (std::vector<std::string>{"normal", "it's"}));
  const Settings again = Settings::parse(s.yaml(), "config.yaml");
  EXPECT_EQ(again.data.classes, s.data.classes);
}

TEST(Settings, BadValuesStopAtTheDoorNamingTheKey) {
  EXPECT_NE(errorOf([] { Settings::defaults({"data.mean=[0.5, 0.5]"}); }).find("data.mean"), std::string::npos);
  EXPECT_NE(errorOf([] { Settings::defaults({"augment.reinhard_std=[1, 2]"}); }).find("augment.reinhard_std"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Settings::defaults({"tiling.target_mpp=0.5", "tiling.target_magnification=20"}); })
                .find("tiling.target_mpp"), std::string::npos);
  EXPECT_NE(errorOf([] { Settings::defaults({"predict.quantile=0"}); }).find("predict.quantile"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Settings::defaults({"predict.quantile=1.5"}); }).find("predict.quantile"),
            std::string::npos);
  EXPECT_NE(errorOf([] { Settings::defaults({"predict.threshold_from=test"}); }).find("predict.threshold_from"),
            std::string::npos);
}

TEST(Settings, PredictPoolingKeys) {
  const Settings d = Settings::defaults();
  EXPECT_DOUBLE_EQ(d.predict.quantile, 0.9);
  EXPECT_EQ(d.predict.thresholdFrom, "val");
  const Settings o = d.with({"predict.quantile=1", "predict.threshold_from=fixed", "predict.aggregation=vote"});
  EXPECT_DOUBLE_EQ(o.predict.quantile, 1.0);
  EXPECT_EQ(o.predict.thresholdFrom, "fixed");
  EXPECT_EQ(o.predict.aggregation, "vote");
  EXPECT_EQ(Settings::defaults({"predict.aggregation=quantile"}).predict.aggregation, "quantile");
}

TEST(Settings, PredictExportsKey) {
  EXPECT_TRUE(Settings::defaults().predict.exports);
  EXPECT_FALSE(Settings::defaults({"predict.exports=false"}).predict.exports);
  EXPECT_NE(errorOf([] { Settings::defaults({"predict.exports=maybe"}); }).find("predict.exports"),
            std::string::npos);
}

TEST(Settings, WeakConfigIsA64SlideWeakLabelCohortWithValAndTest) {
  const Settings s = Settings::load(std::string(SLIDETRAIN_SOURCE_DIR) + "/configs/weak.yaml");
  const auto& o = s.synth.slides;
  EXPECT_EQ(o.numSlides, 64);
  EXPECT_DOUBLE_EQ(o.tumorTissueShare, 0.05);
  EXPECT_GT(o.valFraction, 0);
  EXPECT_GT(o.testFraction, 0);
  EXPECT_NO_THROW(o.validate());
  EXPECT_FALSE(s.tiling.useAnnotations);
  EXPECT_EQ(s.tiling.index.level, 1);
  EXPECT_EQ(s.model.name, "small_cnn");
  // The cohort the weak config trains on is the one its synth section writes.
  EXPECT_EQ(s.run.cohort, s.synth.outDir + "/cohort.csv");
}

TEST(Settings, SynthSharesOutsideTheirRangeAreRefusedNamingTheKey) {
  struct Case {
    std::vector<std::string> overrides;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"synth.tumor_tissue_share=-0.05"}, "synth.tumor_tissue_share: expected number in [0, 1], got -0.05"},
      {{"synth.tumor_tissue_share=1.5"}, "synth.tumor_tissue_share: expected number in [0, 1], got 1.5"},
      {{"synth.test_fraction=0.5", "synth.val_fraction=0.5"},
       "synth.test_fraction + synth.val_fraction must be below 1"},
  };
  for (const auto& c : cases) {
    const std::string e = errorOf([&] { Settings::defaults(c.overrides); });
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.overrides[0] << ": " << e;
  }
  EXPECT_DOUBLE_EQ(Settings::defaults({"synth.tumor_tissue_share=0.05"}).synth.slides.tumorTissueShare, 0.05);
  EXPECT_DOUBLE_EQ(Settings::defaults().synth.slides.tumorTissueShare, 0.0);
  EXPECT_DOUBLE_EQ(Settings::defaults({"synth.slide_variation=0.5"}).synth.slides.slideVariation, 0.5);
  EXPECT_DOUBLE_EQ(Settings::defaults().synth.slides.slideVariation, 0.0);
}
