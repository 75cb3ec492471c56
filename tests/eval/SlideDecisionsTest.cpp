// Slide decisions per pooling method: grouping patch probabilities by slide, the thresholds of
// predict.threshold_from (Youden's J on val slides, or the fixed one) and the JSON files.
#include "src/eval/SlideDecisions.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace slidetrain {
namespace {

// Two-class probabilities of one slide's patches from their class-1 probabilities.
std::vector<std::vector<double>> binary(const std::vector<double>& p1) {
  std::vector<std::vector<double>> pc(2);
  for (double p : p1) pc[0].push_back(1 - p), pc[1].push_back(p);
  return pc;
}

TEST(SlideDecisions, SlideProbabilitiesGroupBySlideAndDropSkippedRows) {
  SplitData d;
  d.paths = {"a", "b", "c"};
  for (int s : {0, 1, 0, 1}) {
    wsi::PatchRequest r;
    r.slide = s;
    d.samples.push_back(r);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const at::Tensor probs = at::tensor({0.9f, 0.1f, 0.3f, 0.7f, nan, nan, 0.4f, 0.6f}).view({4, 2});
  const SlideProbabilities ps = slideProbabilities(d, probs, 2);
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(ps[0][1].size(), 1u);  // its second patch was skipped
  EXPECT_NEAR(ps[0][0][0], 0.9, 1e-7);
  ASSERT_EQ(ps[1][1].size(), 2u);
  EXPECT_NEAR(ps[1][1][1], 0.6, 1e-7);
  EXPECT_TRUE(ps[2][0].empty());   // a slide without patches
}

TEST(SlideDecisions, ValThresholdsAreYoudenPerMethod) {
  SlidePooling pool;
  pool.threshold = 0.5;
  pool.topk = 1;
  pool.quantile = 0.5;
  // Negatives pool (mean) to 0.15 and 0.175, positives to 0.65 and 0.4; an unlabelled slide
  // and a slide without patches are left out.
  const SlideProbabilities val{binary({0.1, 0.2}), binary({0.05, 0.3}), binary({0.4, 0.9}),
                               binary({0.2, 0.6}), binary({0.99, 0.99}), binary({})};
  const std::vector<int> labels{0, 0, 1, 1, -1, 0};
  std::string why = "stale";
  const auto t = valThresholds(val, labels, pool, &why);
  EXPECT_EQ(why, "");
  for (const auto& m : poolingMethods()) EXPECT_EQ(t.at(m).from, "val") << m;
  // J = 1 at the lowest positive score; the threshold lies halfway down to the highest negative.
  EXPECT_DOUBLE_EQ(t.at("mean").value, 0.2875);    // negatives 0.15, 0.175; positives 0.65, 0.4
  EXPECT_DOUBLE_EQ(t.at("max").value, 0.45);       // negatives 0.2, 0.3; positives 0.9, 0.6
  EXPECT_DOUBLE_EQ(t.at("topk").value, 0.45);      // k = 1 is max
  EXPECT_DOUBLE_EQ(t.at("vote").value, 0.25);      // negatives vote 0, 0; positives 1/2, 1/2
  EXPECT_DOUBLE_EQ(t.at("quantile").value, 0.2875); // medians: 0.15, 0.175; 0.65, 0.4
}

TEST(SlideDecisions, OneClassValFallsBackToTheFixedThreshold) {
  SlidePooling pool;
  pool.threshold = 0.3;
  std::string why;
  const auto t = valThresholds({binary({0.1}), binary({0.2}), binary({0.9})}, {0, 0, -1}, pool, &why);
  EXPECT_NE(why.find("one class"), std::string::npos) << why;
  for (const auto& m : poolingMethods()) {
    EXPECT_EQ(t.at(m).from, "fixed") << m;
    EXPECT_DOUBLE_EQ(t.at(m).value, 0.3) << m;
  }
  valThresholds({binary({})}, {1}, pool, &why);
  EXPECT_NE(why.find("no val slide"), std::string::npos) << why;
  EXPECT_THROW(valThresholds({binary({0.1})}, {}, pool, &why), std::invalid_argument);
  const auto three = fixedThresholds(pool, 3);
  EXPECT_EQ(three.at("mean").from, "argmax");
  EXPECT_TRUE(std::isnan(three.at("mean").value));
}

TEST(SlideDecisions, JsonFilesHoldEveryMethod) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("slide_decisions_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  SlidePooling pool;
  auto t = fixedThresholds(pool, 2);
  t["mean"] = {0.25, "val"};
  writeThresholdsJson((dir / "thresholds.json").string(), t, 4);
  std::vector<MethodSlides> ms;
  for (const auto& m : poolingMethods()) {
    MethodSlides r;
    r.method = m;
    r.threshold = t.at(m);
    for (int i = 0; i < 4; ++i) r.labels.push_back(i % 2), r.scores.push_back(0.1 * i + 0.5 * (i % 2)), r.confusion.add(i % 2, i % 2);
    r.finish(100, 1);
    ms.push_back(r);
  }
  writeSlideMetricsJson((dir / "slide_metrics.json").string(), ms, "mean", "test");
  auto read = [&](const char* f) {
    std::ifstream in(dir / f);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const std::string th = read("thresholds.json"), sm = read("slide_metrics.json");
  EXPECT_NE(th.find("\"mean\": {\"threshold\": 0.25, \"from\": \"val\"}"), std::string::npos) << th;
  EXPECT_NE(th.find("\"quantile\": {\"threshold\": 0.5, \"from\": \"fixed\"}"), std::string::npos) << th;
  EXPECT_NE(th.find("\"val_slides\": 4"), std::string::npos) << th;
  EXPECT_NE(sm.find("\"vote\": {\"slides\": 4, \"accuracy\": 1, \"auc\": 1, \"auc_lo\": 1, \"auc_hi\": 1, "
                    "\"auc_reps\": 100, \"threshold\": 0.5, \"threshold_from\": \"fixed\"}"),
            std::string::npos) << sm;
  EXPECT_NE(sm.find("\"chosen\": \"mean\""), std::string::npos) << sm;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace slidetrain
