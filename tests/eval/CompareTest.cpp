// slidetrain compare's reading and aggregation (src/eval/Compare.h): run folders of train, cv and
// mil cv written by hand, read back; a cv expands into its folds; runs given one label pool;
// mean and sd in closed form; compare.csv's exact text; bad folders and files named in errors;
// the page holds a spec for every chart element.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>

#include "src/config/Errors.h"
#include "src/eval/Compare.h"
#include "src/eval/ComparePage.h"
#include "tests/ErrorOf.h"
#include "wsi/Errors.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

using slidetrain::test::errorOf;

fs::path tempDir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("slidetrain_compare_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

/// A train run_dir whose last epoch (2) has val accuracy `valAcc`.
fs::path trainRun(const fs::path& dir, double valAcc) {
  write(dir / "metrics.jsonl",
        R"({"epoch": 1, "step": 3, "loss": 0.9, "seconds": 2, "train": {"accuracy": 0.5}, "val_loss": 0.8, "val": {"accuracy": 0.5}})"
        "\n"
        R"({"epoch": 2, "step": 6, "loss": 0.4, "seconds": 3, "train": {"accuracy": 0.75}, "val_loss": 0.5, "val": {"accuracy": )" +
            std::to_string(valAcc) + R"(, "roc_auc": 0.9}})" "\n");
  return dir;
}

/// A cv run_dir of two folds (patch_auc 0.6 and 0.8 in cv_summary.json).
fs::path cvRun(const fs::path& dir) {
  trainRun(dir / "fold_0", 0.5);
  trainRun(dir / "fold_1", 0.7);
  write(dir / "cv_summary.json", R"({"folds": [{"fold": 0, "patch_accuracy": 0.5, "patch_auc": 0.6, "slide_auc": null},)"
                                 R"( {"fold": 1, "patch_accuracy": 0.7, "patch_auc": 0.8, "slide_auc": null}],)"
                                 R"( "mean": {}, "sd": {}})");
  return dir;
}

TEST(Compare, ParsesLabelsAndFolders) {
  const CompareInput a = parseCompareInput("adam=runs/adam_cv");
  EXPECT_EQ(a.label, "adam");
  EXPECT_EQ(a.dir, "runs/adam_cv");
  EXPECT_EQ(parseCompareInput("runs/sgd/").label, "sgd");
  EXPECT_EQ(parseCompareInput("runs/sgd").dir, "runs/sgd");
}

TEST(Compare, ExpandsCvFoldsAndReadsFinalMetrics) {
  const fs::path d = tempDir("cv");
  const CompareGroup g = readCompareGroup("opt", cvRun(d / "cv").string());
  EXPECT_EQ(g.kind, "cv");
  ASSERT_EQ(g.runs.size(), 2u);
  EXPECT_EQ(g.runs[0].name, "fold_0");
  EXPECT_EQ(g.runs[1].dir, (d / "cv" / "fold_1").string());
  EXPECT_DOUBLE_EQ(g.runs[1].metric("patch_auc"), 0.8);        // cv_summary.json's row
  EXPECT_DOUBLE_EQ(g.runs[1].metric("val_accuracy"), 0.7);     // metrics.jsonl's last epoch
  EXPECT_DOUBLE_EQ(g.runs[1].metric("train_accuracy"), 0.75);
  EXPECT_DOUBLE_EQ(g.runs[1].metric("epochs"), 2);
  EXPECT_DOUBLE_EQ(g.runs[1].metric("steps"), 6);
  EXPECT_DOUBLE_EQ(g.runs[1].metric("train_seconds"), 5);
  EXPECT_TRUE(std::isnan(g.runs[0].metric("slide_auc")));     // null: undefined, not 0
  const MetricSummary s = summarizeMetric(g, "patch_auc");
  EXPECT_DOUBLE_EQ(s.mean, 0.7);
  EXPECT_NEAR(s.sd, std::sqrt(0.02), 1e-12);  // sample sd of 0.6, 0.8
  EXPECT_EQ(s.n, 2u);
  EXPECT_EQ(summarizeMetric(g, "slide_auc").n, 0u);
}

TEST(Compare, PoolsRunsOfOneLabelAndPicksTheDefaultMetric) {
  const fs::path d = tempDir("pool");
  const auto groups = readComparison({{"cv", cvRun(d / "cv").string()},
                                      {"seeds", trainRun(d / "s1", 0.6).string()},
                                      {"seeds", trainRun(d / "s2", 0.9).string()}});
  ASSERT_EQ(groups.size(), 2u);
  ASSERT_EQ(groups[1].runs.size(), 2u);
  EXPECT_EQ(groups[1].runs[1].name, "s2");
  EXPECT_NEAR(summarizeMetric(groups[1], "val_accuracy").mean, 0.75, 1e-9);
  // patch_auc is the cv's only: every group has val_auc.
  EXPECT_EQ(defaultCompareMetric(groups), "val_auc");
  EXPECT_EQ(defaultCompareMetric({groups[0]}), "patch_auc");
  EXPECT_NO_THROW(checkCompareMetric(groups, "patch_auc"));
  EXPECT_NE(errorOf([&] { checkCompareMetric(groups, "f1"); }).find("--metric f1: unknown metric; one of epochs"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { checkCompareMetric({groups[1]}, "patch_auc"); }).find("no run has it"), std::string::npos);
}

TEST(Compare, CsvHasARowPerRunThenMeanAndSd) {
  const fs::path d = tempDir("csv");
  const auto groups = readComparison({{"a,b", trainRun(d / "r1", 0.5).string()},
                                      {"a,b", trainRun(d / "r2", 1.0).string()}});
  const std::string head = "group,run,kind,n,dir,epochs,steps,train_seconds,train_loss,train_accuracy,val_loss,"
                           "val_accuracy,val_auc\n";
  const std::string tail = ",2,6,5,0.4,0.75,0.5,";
  EXPECT_EQ(compareCsv(groups), head +
                                    "\"a,b\",r1,train,1," + (d / "r1").string() + tail + "0.5,0.9\n" +
                                    "\"a,b\",r2,train,1," + (d / "r2").string() + tail + "1,0.9\n" +
                                    "\"a,b\",mean,train,2,,2,6,5,0.4,0.75,0.5,0.75,0.9\n"
                                    "\"a,b\",sd,train,2,,0,0,0,0,0,0,0.353553,0\n");
}

TEST(Compare, BadFoldersAndFilesAreNamed) {
  const fs::path d = tempDir("bad");
  fs::create_directories(d / "empty");
  EXPECT_NE(errorOf([&] { readCompareGroup("x", (d / "empty").string()); })
                .find((d / "empty").string() + ": not a run folder"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { readCompareGroup("x", (d / "none").string()); }).find("none: no such folder"),
            std::string::npos);
  cvRun(d / "cv");
  fs::remove(d / "cv" / "fold_1" / "metrics.jsonl");
  EXPECT_EQ(errorOf([&] { readCompareGroup("x", (d / "cv").string()); }),
            (d / "cv" / "fold_1" / "metrics.jsonl").string() + ": missing (every trained model's folder has one)");
  write(d / "cv" / "cv_summary.json", "{\"folds\": [");
  EXPECT_NE(errorOf([&] { readCompareGroup("x", (d / "cv").string()); }).find((d / "cv" / "cv_summary.json").string()),
            std::string::npos);
  write(d / "broken" / "metrics.jsonl", "{\"epoch\": 1, \"lo\n");
  EXPECT_NE(errorOf([&] { readCompareGroup("x", (d / "broken").string()); })
                .find((d / "broken" / "metrics.jsonl").string() + ": no line with an epoch could be read"),
            std::string::npos);
  trainRun(d / "p", 0.5);
  write(d / "p" / "slide_metrics.json", "{\"chosen\": \"mean\", \"methods\": {\"mean\": {\"accuracy\": ");
  EXPECT_NE(errorOf([&] { readCompareGroup("x", (d / "p").string()); }).find((d / "p" / "slide_metrics.json").string()),
            std::string::npos);
}

TEST(Compare, ReadsPredictAndMilFolds) {
  const fs::path d = tempDir("mil");
  trainRun(d / "run", 0.5);
  write(d / "run" / "slide_metrics.json",
        R"({"chosen": "topk", "methods": {"mean": {"accuracy": 0.1, "auc": 0.2}, "topk": {"accuracy": 0.75, "auc": 0.875}}})");
  const CompareGroup t = readCompareGroup("t", (d / "run").string());
  EXPECT_DOUBLE_EQ(t.runs[0].metric("predict_accuracy"), 0.75);
  EXPECT_DOUBLE_EQ(t.runs[0].metric("predict_auc"), 0.875);
  for (int f = 0; f < 2; ++f) {
    trainRun(d / "milcv" / "mil" / ("fold_" + std::to_string(f)), 0.5);
    write(d / "milcv" / "mil" / ("fold_" + std::to_string(f)) / "summary.json",
          R"({"bags": 4, "accuracy": 0.5, "auc": 0.625})");
  }
  write(d / "milcv" / "mil" / "cv_summary.json",
        R"({"folds": [{"fold": 0, "oof_accuracy": 0.5, "oof_auc": 0.5}, {"fold": 1, "oof_accuracy": 1, "oof_auc": 1}]})");
  const CompareGroup m = readCompareGroup("m", (d / "milcv").string());
  EXPECT_EQ(m.kind, "mil cv");
  ASSERT_EQ(m.runs.size(), 2u);
  EXPECT_DOUBLE_EQ(m.runs[1].metric("oof_auc"), 1);
  EXPECT_DOUBLE_EQ(m.runs[1].metric("predict_auc"), 0.625);
  EXPECT_EQ(defaultCompareMetric({m}), "oof_auc");
}

TEST(ComparePage, EveryChartElementHasItsSpec) {
  const fs::path d = tempDir("page");
  const auto groups = readComparison({{"cv", cvRun(d / "cv").string()}});
  ComparePageOptions o;
  o.metric = "patch_auc";
  writeComparePage((d / "compare.html").string(), groups, o);
  std::ifstream in(d / "compare.html");
  const std::string html{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  for (const std::string name : {"boxplot", "curves_loss", "curves_accuracy", "curves_auc"}) {
    EXPECT_NE(html.find("id=\"chart-" + name + "\""), std::string::npos) << name;
    EXPECT_NE(html.find("\"" + name + "\":{"), std::string::npos) << name;
  }
  EXPECT_NE(html.find("0.7000 &plusmn; 0.1414"), std::string::npos);  // patch_auc's mean ± sd
  EXPECT_EQ(html.find("<script src="), std::string::npos);
}

}  // namespace
}  // namespace slidetrain
