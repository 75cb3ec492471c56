// report.html's parts: metrics.jsonl read back (restarts, resumed epochs, broken lines, slidetrain
// mil's names, per-step columns), the Vega-Lite specs (valid JSON holding the curve points), and
// the page (every chart element has its spec, the scripts are inline, text is escaped).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "src/eval/Curves.h"
#include "src/eval/Report.h"
#include "src/eval/ReportCharts.h"
#include "src/eval/ReportHtml.h"
#include "src/eval/TrainingLog.h"
#include "wsi/Json.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

std::string tempDir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("slidetrain_report_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(TrainingLog, ReadsEpochsStepsAndLeavesOutWhatItCannotRead) {
  const std::string dir = tempDir("log");
  std::ofstream(dir + "/metrics.jsonl")
      << R"({"epoch": 1, "step": 2, "loss": 0.9, "lr": 0.1, "train": {"accuracy": 0.5}})" "\n"
      << R"({"epoch": 1, "step": 2, "loss": 0.8})" "\n"  // train started over: the first run is dropped
      << "{\"epoch\": 2, \"step\": 4, \"lo\n"            // a line cut by a crash
      << R"({"epoch": 2, "step": 4, "loss": 0.5, "lr": 0.01, "seconds": 3, "patches_per_s": 10.5,)"
         R"( "data_wait_pct": 1.5, "world_size": 2, "device": "cpu", "train": {"accuracy": 0.75},)"
         R"( "val_loss": 0.6, "val": {"accuracy": 0.7, "roc_auc": 0.8}, "val_slide": {"accuracy": 1},)"
         R"( "steps": {"step": [3, 4], "loss": [0.6, 0.4], "accuracy": [0.5, 1], "lr": [0.01, 0.01]}})" "\n"
      << R"({"step": 5})" "\n";
  const TrainingLog log = readTrainingLog(dir + "/metrics.jsonl");
  EXPECT_TRUE(log.found);
  ASSERT_EQ(log.epochs.size(), 2u);
  EXPECT_EQ(log.epochs[0].epoch, 1);
  EXPECT_DOUBLE_EQ(log.epochs[0].loss, 0.8);
  EXPECT_TRUE(std::isnan(log.epochs[0].accuracy));
  const EpochRecord& e = log.epochs[1];
  EXPECT_EQ(e.step, 4);
  EXPECT_DOUBLE_EQ(e.accuracy, 0.75);
  EXPECT_DOUBLE_EQ(e.valLoss, 0.6);
  EXPECT_DOUBLE_EQ(e.valAccuracy, 0.7);
  EXPECT_DOUBLE_EQ(e.valAuc, 0.8);
  EXPECT_DOUBLE_EQ(e.valSlideAccuracy, 1);
  EXPECT_DOUBLE_EQ(e.patchesPerS, 10.5);
  EXPECT_DOUBLE_EQ(e.dataWaitPct, 1.5);
  EXPECT_EQ(e.worldSize, 2);
  EXPECT_EQ(e.device, "cpu");
  ASSERT_EQ(log.steps.size(), 2u);
  EXPECT_EQ(log.steps[1].step, 4);
  EXPECT_EQ(log.steps[1].epoch, 2);
  EXPECT_DOUBLE_EQ(log.steps[1].loss, 0.4);
  ASSERT_EQ(log.notes.size(), 3u);  // the cut line, the line without an epoch, the restart
  EXPECT_NE(log.notes[0].find("line 3 left out"), std::string::npos) << log.notes[0];
  EXPECT_NE(log.notes[1].find("line 5 left out: no \"epoch\""), std::string::npos) << log.notes[1];
  EXPECT_NE(log.notes[2].find("start over at line 2"), std::string::npos) << log.notes[2];
  EXPECT_FALSE(readTrainingLog(dir + "/none.jsonl").found);
  fs::remove_all(dir);
}

TEST(TrainingLog, ResumedEpochKeepsItsLaterLineAndMilNamesAreRead) {
  const std::string dir = tempDir("mil");
  std::ofstream(dir + "/metrics.jsonl")
      << R"({"epoch": 1, "step": 3, "train_loss": 0.7, "train_acc": 0.6, "val_acc": 0.5, "val_auc": 0.9})" "\n"
      << R"({"epoch": 2, "step": 4, "train_loss": 0.6})" "\n"   // cut by train.max_steps
      << R"({"epoch": 2, "step": 6, "train_loss": 0.5})" "\n";  // resumed with a longer max_steps
  const TrainingLog log = readTrainingLog(dir + "/metrics.jsonl");
  ASSERT_EQ(log.epochs.size(), 2u);
  EXPECT_DOUBLE_EQ(log.epochs[0].loss, 0.7);
  EXPECT_DOUBLE_EQ(log.epochs[0].accuracy, 0.6);
  EXPECT_DOUBLE_EQ(log.epochs[0].valAccuracy, 0.5);
  EXPECT_DOUBLE_EQ(log.epochs[0].valAuc, 0.9);
  EXPECT_EQ(log.epochs[1].step, 6);
  EXPECT_TRUE(log.notes.empty());
  fs::remove_all(dir);
}

/// The "values" of a spec's data (top level, or of layer `layer`).
const std::vector<wsi::JsonValue>& values(const wsi::JsonValue& spec, int layer = -1) {
  const wsi::JsonValue& v = layer < 0 ? spec : spec.find("layer")->array[static_cast<size_t>(layer)];
  return v.find("data")->find("values")->array;
}

TEST(ReportCharts, RocAndPrSpecsHoldTheCurvePoints) {
  ScoredSet set{"slides", {0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}, {}};
  set.auc = bootstrapAucCi(set.labels, set.scores, 50, 1);
  const wsi::JsonValue roc = wsi::parseJson(rocChart("roc", "ROC", {set}).spec, "roc");
  const auto& rocData = values(roc, 1);
  const std::vector<CurvePoint> want = rocCurve(set.labels, set.scores);
  ASSERT_EQ(rocData.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_DOUBLE_EQ(rocData[i].find("x")->number, want[i].x);
    EXPECT_DOUBLE_EQ(rocData[i].find("y")->number, want[i].y);
    EXPECT_EQ(rocData[i].find("i")->number, static_cast<double>(i));  // drawn in this order
  }
  EXPECT_EQ(rocData[0].find("threshold"), nullptr);  // +inf is not written
  EXPECT_EQ(rocData[0].find("series")->string.rfind("slides: AUC 0.75 [", 0), 0u) << rocData[0].find("series")->string;
  const wsi::JsonValue pr = wsi::parseJson(precisionRecallChart("pr", "PR", {set}).spec, "pr");
  EXPECT_EQ(values(pr, 1).size(), 5u);
  EXPECT_EQ(values(pr, 1)[0].find("series")->string, "slides: AP 0.83");
  EXPECT_DOUBLE_EQ(values(pr, 0)[0].find("y")->number, 0.5);  // chance: the positive share
  EXPECT_EQ(pr.find("layer")->array[1].find("mark")->find("interpolate")->string, "step-after");
  // One class only: no curve to draw.
  EXPECT_FALSE(anyRoc({ScoredSet{"one", {1, 1}, {0.2, 0.3}, {}}}));
  EXPECT_TRUE(anyRoc({set}));
}

TEST(ReportCharts, ConfusionSpecHasEveryCellWithItsRowShare) {
  ConfusionMatrix cm(3);
  cm.add(0, 0, 3), cm.add(0, 2, 1), cm.add(1, 1, 2), cm.add(2, 0, 5);
  const wsi::JsonValue c = wsi::parseJson(confusionChart("cm", "CM", cm, {"a", "b", "c"}).spec, "cm");
  const auto& v = values(c);
  ASSERT_EQ(v.size(), 9u);
  EXPECT_EQ(v[2].find("true")->string, "a");
  EXPECT_EQ(v[2].find("predicted")->string, "c");
  EXPECT_EQ(v[2].find("count")->number, 1);
  EXPECT_DOUBLE_EQ(v[2].find("share")->number, 0.25);
  EXPECT_DOUBLE_EQ(v[6].find("share")->number, 1.0);
}

TEST(ReportCharts, TrainingChartsFollowWhatTheLogHolds) {
  TrainingLog log;
  EXPECT_TRUE(trainingCharts(log).empty());
  EpochRecord e;
  e.epoch = 1, e.step = 2, e.loss = 0.5, e.lr = 0.1, e.patchesPerS = 100, e.dataWaitPct = 2;
  log.epochs.push_back(e);
  std::vector<std::string> names;
  for (const ChartSpec& c : trainingCharts(log)) names.push_back(c.name);
  // No accuracy at all (every value NaN): no accuracy chart.
  EXPECT_EQ(names, (std::vector<std::string>{"loss", "lr", "throughput", "data_wait"}));
  log.steps = {{1, 1, 0.6, 0.5, 0.1}, {2, 1, 0.4, 0.75, 0.1}};
  const std::vector<ChartSpec> charts = trainingCharts(log);
  ASSERT_EQ(charts.size(), 5u);
  const wsi::JsonValue loss = wsi::parseJson(charts[0].spec, "loss");
  ASSERT_EQ(values(loss).size(), 3u);  // 2 steps + the epoch's mean (no val)
  EXPECT_EQ(values(loss)[0].find("series")->string, "train (per step)");
  EXPECT_FALSE(values(loss)[0].find("epoch_end")->boolean);
  EXPECT_TRUE(values(loss)[2].find("epoch_end")->boolean);
  EXPECT_EQ(loss.find("layer")->array.size(), 2u);  // lines, and dots on the epoch values
  const wsi::JsonValue lr = wsi::parseJson(charts[2].spec, "lr");
  EXPECT_EQ(values(lr).size(), 2u);
  EXPECT_EQ(lr.find("layer")->array.size(), 1u);  // per step only: no dots (an empty layer warns)
}

TEST(TrainingLog, ReadsEachRanksThroughput) {
  const std::string dir = tempDir("ranks");
  std::ofstream(dir + "/metrics.jsonl")
      << R"({"epoch": 1, "step": 2, "patches_per_s": 30, "data_wait_pct": 4, "gpu_busy_pct": 80,)"
         R"( "ranks": {"patches": [10, 20], "seconds": [1, 1], "patches_per_s": [10, 20],)"
         R"( "data_wait_pct": [7, 1], "gpu_busy_pct": [90, 70]}})" "\n"
      << R"({"epoch": 2, "step": 4, "ranks": {"patches_per_s": [10], "data_wait_pct": [5], "gpu_busy_pct": [null]}})" "\n"
      << R"({"epoch": 3, "step": 6, "ranks": {"patches_per_s": [10, 2], "data_wait_pct": [5]}})" "\n";
  const TrainingLog log = readTrainingLog(dir + "/metrics.jsonl");
  ASSERT_EQ(log.epochs.size(), 3u);
  EXPECT_DOUBLE_EQ(log.epochs[0].gpuBusyPct, 80);
  ASSERT_EQ(log.epochs[0].ranks.size(), 2u);
  EXPECT_DOUBLE_EQ(log.epochs[0].ranks[1].patchesPerS, 20);
  EXPECT_DOUBLE_EQ(log.epochs[0].ranks[0].dataWaitPct, 7);
  EXPECT_DOUBLE_EQ(log.epochs[0].ranks[1].gpuBusyPct, 70);
  ASSERT_EQ(log.epochs[1].ranks.size(), 1u);  // a CPU run: no GPU figure
  EXPECT_TRUE(std::isnan(log.epochs[1].ranks[0].gpuBusyPct));
  EXPECT_TRUE(std::isnan(log.epochs[1].gpuBusyPct));
  EXPECT_TRUE(log.epochs[2].ranks.empty());  // columns of different lengths: left out
}

TEST(ReportCharts, ThroughputChartsHaveALinePerRankAndGpuBusyOnlyWithAGpu) {
  TrainingLog log;
  for (int64_t epoch = 1; epoch <= 2; ++epoch) {
    EpochRecord e;
    e.epoch = epoch, e.step = 2 * epoch, e.loss = 0.5, e.patchesPerS = 30, e.dataWaitPct = 4;
    e.ranks = {{10, 7, std::nan("")}, {20, 1, std::nan("")}};
    log.epochs.push_back(e);
  }
  auto chart = [&](const std::string& name) {
    for (const ChartSpec& c : trainingCharts(log))
      if (c.name == name) return wsi::parseJson(c.spec, name);
    return wsi::JsonValue{};
  };
  auto series = [&](const std::string& name) {
    std::vector<std::string> out;
    const wsi::JsonValue spec = chart(name);
    if (!spec.isObject()) return out;
    for (const wsi::JsonValue& v : values(spec)) out.push_back(v.find("series")->string);
    return out;
  };
  EXPECT_EQ(series("throughput"), (std::vector<std::string>{"all ranks", "all ranks", "rank 0", "rank 0",
                                                            "rank 1", "rank 1"}));
  EXPECT_DOUBLE_EQ(values(chart("throughput"))[5].find("value")->number, 20);
  EXPECT_EQ(series("data_wait")[0], "mean over ranks");
  EXPECT_DOUBLE_EQ(values(chart("data_wait"))[2].find("value")->number, 7);
  EXPECT_FALSE(chart("gpu_busy").isObject());  // no GPU figure anywhere: no chart
  log.epochs[1].gpuBusyPct = 85;
  log.epochs[1].ranks[0].gpuBusyPct = 90, log.epochs[1].ranks[1].gpuBusyPct = 80;
  EXPECT_EQ(series("gpu_busy"), (std::vector<std::string>{"mean over ranks", "rank 0", "rank 1"}));
  // One rank: the run's line only.
  for (EpochRecord& e : log.epochs) e.ranks.resize(1);
  EXPECT_EQ(series("throughput"), (std::vector<std::string>{"all ranks", "all ranks"}));
}

TEST(ReportHtml, TrainingSectionHasAPerRankTable) {
  const std::string dir = tempDir("rank_table");
  ReportContent c;
  c.title = "run";
  c.training.found = true;
  EpochRecord e;
  e.epoch = 3, e.step = 6, e.loss = 0.5, e.patchesPerS = 30, e.dataWaitPct = 4, e.worldSize = 2;
  e.ranks = {{10.25, 7.5, 91}, {20, 1, std::nan("")}};
  c.training.epochs = {e};
  writeReportHtml(dir + "/report.html", c);
  const std::string html = readFile(dir + "/report.html");
  EXPECT_NE(html.find("<caption>Per rank, epoch 3</caption>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>0</td><td>10.2</td><td>7.5</td><td>91</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<tr><td>1</td><td>20.0</td><td>1.0</td><td>not measured</td></tr>"), std::string::npos);
}

TEST(ReportHtml, Base64AndEscapes) {
  // RFC 4648 section 10.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : cases) EXPECT_EQ(report::base64(in), out) << in;
  EXPECT_EQ(report::base64(std::string("\xff\x00\x10", 3)), "/wAQ");
  EXPECT_EQ(report::escapeHtml("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
  EXPECT_EQ(report::jsonForScript(R"({"t":"</script><!--"})"), R"({"t":"\u003c/script>\u003c!--"})");
  EXPECT_EQ(report::singular("slides"), "slide");
}

TEST(ReportHtml, PageHasEveryChartItsScriptsAndEscapedText) {
  const std::string dir = tempDir("page");
  ReportContent c;
  c.title = "run <1>";
  c.summaryText = "accuracy 1 < 2";
  c.classes = {"normal", "tumor"};
  ReportRow r;
  r.slideId = "s<1>", r.label = "tumor", r.prediction = "normal", r.score = 0.25, r.patches = 3;
  r.heatmap = "heatmaps/s1.png", r.heatmapJpeg = "JPEG";
  c.rows = {r};
  ConfusionMatrix cm(2);
  cm.add(1, 0);
  cm.add(0, 0);
  c.hasMetrics = true;
  c.metrics = Metrics::compute(cm);
  c.slideCurves = {{"mean pooling", {0, 1}, {0.1, 0.25}, {}}};
  c.qc = {"no score: blank: no patches"};
  c.run = {{"command", "slidetrain predict -c 'a b.yaml'"}};
  c.configs = {{"settings", "seed: 7\n"}};
  writeReportHtml(dir + "/report.html", c);
  const std::string html = readFile(dir + "/report.html");
  for (const char* id : {"chart-confusion", "chart-roc_slides", "chart-pr_slides"})
    EXPECT_NE(html.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_EQ(html.find("chart-roc_patches"), std::string::npos);  // no patch scores given
  EXPECT_EQ(html.find("href=\"#patches\""), std::string::npos);    // nor a link to their section
  for (const char* lib : {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"})
    EXPECT_NE(html.find(std::string("<script data-library=\"") + lib + "\">"), std::string::npos) << lib;
  EXPECT_EQ(html.find("<script src"), std::string::npos);  // nothing to fetch
  EXPECT_NE(html.find("<title>run &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<td>s&lt;1&gt;</td>"), std::string::npos);
  EXPECT_NE(html.find("<tr class=\"bad\">"), std::string::npos);  // tumor called normal
  EXPECT_NE(html.find("<a href=\"heatmaps/s1.png\"><img src=\"data:image/jpeg;base64,SlBFRw==\""), std::string::npos);
  EXPECT_NE(html.find("<li>no score: blank: no patches</li>"), std::string::npos);
  EXPECT_NE(html.find("No metrics.jsonl in the run folder"), std::string::npos);
  EXPECT_NE(html.find("LICENSE-vega-embed"), std::string::npos);
  // The specs parse, and name exactly the chart elements of the page.
  const std::string open = "<script type=\"application/json\" id=\"report-chart-specs\">";
  const size_t at = html.find(open);
  ASSERT_NE(at, std::string::npos);
  const std::string json = html.substr(at + open.size(), html.find("</script>", at) - at - open.size());
  EXPECT_EQ(json.find('<'), std::string::npos);
  const wsi::JsonValue specs = wsi::parseJson(json, "specs");
  EXPECT_EQ(specs.object.size(), 3u);
  for (const auto& [name, spec] : specs.object)
    EXPECT_NE(html.find("id=\"chart-" + name + "\""), std::string::npos) << name;
  EXPECT_THROW(writeReportHtml(dir + "/missing/dir/report.html", c), std::runtime_error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace slidetrain
