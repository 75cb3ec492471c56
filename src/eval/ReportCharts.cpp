// ReportCharts: see ReportCharts.h. Every spec is one Vega-Lite view (or a layer) with its data
// inline, so a page needs nothing but the three vendored scripts to draw it.
#include "src/eval/ReportCharts.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <utility>
#include <sstream>

#include "src/eval/Curves.h"
#include "wsi/JsonWriter.h"

namespace slidetrain {
namespace {

using chart::field;
using chart::kHeight;
using chart::kWidth;
using chart::tooltip;
constexpr auto chartStyle = chart::style;

std::string fixed2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

/// "AUC 0.94 [0.75, 1.00]" (the CI where the set has one), "AUC undefined" when it is.
std::string aucText(const AucCi& a) {
  if (a.auc < 0) return "AUC undefined";
  std::string s = "AUC " + fixed2(a.auc);
  if (a.reps > 0 && a.lo >= 0) s += " [" + fixed2(a.lo) + ", " + fixed2(a.hi) + "]";
  return s;
}

/// One point of a training chart: x is the optimizer step or the epoch.
struct Point {
  int64_t epoch, step;
  std::string series;
  double value;
  bool epochEnd;  ///< a per-epoch value (drawn with a dot), else a per-step one
};

/// A line chart of several series (long format), with dots on the per-epoch values. `order`
/// fixes the legend; a chart with no finite value is returned empty.
ChartSpec lineChart(const std::string& name, const std::string& title, const std::string& yTitle,
                    const std::string& x, const std::vector<Point>& points, const std::vector<std::string>& order,
                    bool unitInterval, const std::string& format) {
  std::ostringstream o;
  wsi::JsonWriter w(o, chartStyle());
  w.beginObject().key("title").value(title).key("width").value(kWidth).key("height").value(kHeight);
  w.key("data").beginObject().key("values").beginArray();
  size_t drawn = 0;
  bool dots = false;
  for (const Point& p : points) {
    if (!std::isfinite(p.value)) continue;
    dots = dots || p.epochEnd;
    w.beginObject().key("epoch").value(p.epoch).key("step").value(p.step).key("series").value(p.series)
        .key("value").value(p.value).key("epoch_end").value(p.epochEnd).endObject();
    ++drawn;
  }
  w.endArray().endObject();
  w.key("encoding").beginObject();
  w.key("x");
  field(w, x, "quantitative", x == "step" ? "optimizer step" : "epoch");
  w.key("axis").beginObject().key("tickMinStep").value(1).key("format").value("d").endObject().endObject();
  w.key("y");
  field(w, "value", "quantitative", yTitle);
  w.key("scale").beginObject().key("zero").value(false);
  if (unitInterval) w.key("domainMax").value(1);
  w.endObject().endObject();
  w.key("color");
  field(w, "series", "nominal", "");
  w.key("title").value(nullptr).key("sort").beginArray();
  for (const std::string& s : order) w.value(s);
  w.endArray();
  if (order.size() == 1) w.key("legend").value(nullptr);  // the title says what the line is
  w.endObject();
  tooltip(w, {{"epoch", "quantitative", "", ""},
               {"step", "quantitative", "optimizer step", ""},
               {"series", "nominal", "", ""},
               {"value", "quantitative", yTitle, format}});
  w.endObject();
  w.key("layer").beginArray();
  w.beginObject().key("mark").beginObject().key("type").value("line").key("strokeWidth").value(1.5).endObject().endObject();
  if (dots) {  // a layer without data would make Vega warn of an infinite extent
    w.beginObject().key("transform").beginArray().beginObject().key("filter").value("datum.epoch_end").endObject().endArray();
    w.key("mark").beginObject().key("type").value("point").key("filled").value(true).endObject().endObject();
  }
  w.endArray().endObject();
  return drawn > 0 ? ChartSpec{name, o.str()} : ChartSpec{};
}

/// The layered curve chart shared by ROC and PR: a reference layer, then the curves.
ChartSpec curveChart(const std::string& name, const std::string& title, const std::string& xTitle,
                     const std::string& yTitle, const std::string& interpolate,
                     const std::vector<std::pair<std::string, std::vector<CurvePoint>>>& curves,
                     const std::function<void(wsi::JsonWriter&)>& referenceLayer) {
  std::ostringstream o;
  wsi::JsonWriter w(o, chartStyle());
  w.beginObject().key("title").value(title).key("width").value(kWidth).key("height").value(kHeight);
  w.key("layer").beginArray();
  referenceLayer(w);
  w.beginObject().key("data").beginObject().key("values").beginArray();
  for (const auto& [label, points] : curves)
    for (size_t i = 0; i < points.size(); ++i) {
      w.beginObject().key("series").value(label).key("i").value(static_cast<int64_t>(i))
          .key("x").value(points[i].x).key("y").value(points[i].y);
      // +inf (ROC's first point) and NaN (PR's last) have no threshold to show.
      if (std::isfinite(points[i].threshold)) w.key("threshold").value(points[i].threshold);
      w.endObject();
    }
  w.endArray().endObject();
  w.key("mark").beginObject().key("type").value("line").key("interpolate").value(interpolate)
      .key("point").value(curves.size() == 1 && curves[0].second.size() <= 60).endObject();
  w.key("encoding").beginObject();
  w.key("x");
  field(w, "x", "quantitative", xTitle);
  w.key("scale").beginObject().key("domain").beginArray().value(0).value(1).endArray().endObject().endObject();
  w.key("y");
  field(w, "y", "quantitative", yTitle);
  w.key("scale").beginObject().key("domain").beginArray().value(0).value(1).endArray().endObject().endObject();
  w.key("color");
  field(w, "series", "nominal", "");
  w.key("title").value(nullptr).key("sort").value(nullptr);  // the sets' order: the chosen one first
  w.key("legend").beginObject().key("orient").value("bottom").key("direction").value("vertical")
      .key("labelLimit").value(420).endObject().endObject();
  w.key("order");  // the curve's own order: vertical steps must not be re-sorted by x
  field(w, "i", "quantitative", "");
  w.endObject();
  tooltip(w, {{"series", "nominal", "", ""},
               {"x", "quantitative", xTitle, ".3f"},
               {"y", "quantitative", yTitle, ".3f"},
               {"threshold", "quantitative", "score threshold", ".4f"}});
  w.endObject().endObject();
  w.endArray().endObject();
  return {name, o.str()};
}

}  // namespace

namespace chart {

wsi::JsonStyle style() {
  wsi::JsonStyle s = wsi::JsonStyle::compact();
  s.significantDigits = 7;
  return s;
}

void field(wsi::JsonWriter& w, const std::string& f, const std::string& type, const std::string& title) {
  w.beginObject().key("field").value(f).key("type").value(type);
  if (!title.empty()) w.key("title").value(title);
}

void tooltip(wsi::JsonWriter& w, const std::vector<TooltipField>& fields) {
  w.key("tooltip").beginArray();
  for (const TooltipField& f : fields) {
    field(w, f.field, f.type, f.title);
    if (!f.format.empty()) w.key("format").value(f.format);
    w.endObject();
  }
  w.endArray();
}

}  // namespace chart

std::vector<ChartSpec> trainingCharts(const TrainingLog& log) {
  std::vector<ChartSpec> out;
  auto add = [&](ChartSpec c) {
    if (!c.spec.empty()) out.push_back(std::move(c));
  };
  using Get = double (*)(const EpochRecord&);
  // Per-epoch series at x = the epoch's last optimizer step, next to the per-step ones.
  auto points = [&](double (*perStep)(const StepRecord&), const std::vector<std::pair<std::string, Get>>& perEpoch,
                    const std::string& stepSeries) {
    std::vector<Point> p;
    if (perStep)
      for (const StepRecord& s : log.steps) p.push_back({s.epoch, s.step, stepSeries, perStep(s), false});
    for (const EpochRecord& e : log.epochs)
      for (const auto& [series, get] : perEpoch) p.push_back({e.epoch, e.step, series, get(e), true});
    return p;
  };
  const bool steps = !log.steps.empty();
  auto order = [&](std::vector<std::string> names) {
    if (!steps) names.erase(names.begin());
    return names;
  };
  add(lineChart("loss", "Loss", "loss", "step",
                points(steps ? +[](const StepRecord& s) { return s.loss; } : nullptr,
                       {{"train (epoch mean)", [](const EpochRecord& e) { return e.loss; }},
                        {"val (end of epoch)", [](const EpochRecord& e) { return e.valLoss; }}},
                       "train (per step)"),
                order({"train (per step)", "train (epoch mean)", "val (end of epoch)"}), false, ".4f"));
  add(lineChart("accuracy", "Accuracy and AUC", "accuracy / AUC", "step",
                points(steps ? +[](const StepRecord& s) { return s.accuracy; } : nullptr,
                       {{"train accuracy (epoch)", [](const EpochRecord& e) { return e.accuracy; }},
                        {"val accuracy (patches)", [](const EpochRecord& e) { return e.valAccuracy; }},
                        {"val accuracy (slides)", [](const EpochRecord& e) { return e.valSlideAccuracy; }},
                        {"val AUC (patches)", [](const EpochRecord& e) { return e.valAuc; }}},
                       "train accuracy (per step)"),
                order({"train accuracy (per step)", "train accuracy (epoch)", "val accuracy (patches)",
                       "val accuracy (slides)", "val AUC (patches)"}),
                true, ".4f"));
  // The learning rate per step, else at each epoch's last step.
  std::vector<Point> lr;
  if (steps)
    for (const StepRecord& s : log.steps) lr.push_back({s.epoch, s.step, "lr", s.lr, false});
  else
    for (const EpochRecord& e : log.epochs) lr.push_back({e.epoch, e.step, "lr", e.lr, true});
  add(lineChart("lr", "Learning rate", "learning rate", "step", lr, {"lr"}, false, ".3g"));
  // Throughput, data wait and GPU busy per epoch: the run's figure, and each rank's when there
  // are several (metrics.jsonl "ranks").
  size_t ranks = 0;
  for (const EpochRecord& e : log.epochs) ranks = std::max(ranks, e.ranks.size());
  auto perRank = [&](const std::string& whole, double EpochRecord::*total, double RankRecord::*own) {
    std::vector<Point> p;
    std::vector<std::string> order{whole};
    for (const EpochRecord& e : log.epochs) p.push_back({e.epoch, e.step, whole, e.*total, true});
    if (ranks < 2) return std::pair{p, order};
    for (size_t r = 0; r < ranks; ++r) {
      order.push_back("rank " + std::to_string(r));
      for (const EpochRecord& e : log.epochs)
        if (r < e.ranks.size()) p.push_back({e.epoch, e.step, order.back(), e.ranks[r].*own, true});
    }
    return std::pair{p, order};
  };
  const auto [speed, speedOrder] = perRank("all ranks", &EpochRecord::patchesPerS, &RankRecord::patchesPerS);
  add(lineChart("throughput", ranks < 2 ? "Training throughput per epoch" : "Training throughput per epoch (all ranks and each)",
                "patches / s", "epoch", speed, speedOrder, false, ".1f"));
  const auto [wait, waitOrder] = perRank("mean over ranks", &EpochRecord::dataWaitPct, &RankRecord::dataWaitPct);
  add(lineChart("data_wait", "Share of step time waiting for data, per epoch", "data wait (%)", "epoch", wait,
                waitOrder, false, ".1f"));
  const auto [busy, busyOrder] = perRank("mean over ranks", &EpochRecord::gpuBusyPct, &RankRecord::gpuBusyPct);
  add(lineChart("gpu_busy", "GPU busy (NVML utilization) during the training passes", "GPU busy (%)", "epoch", busy,
                busyOrder, false, ".0f"));
  return out;
}

bool anyRoc(const std::vector<ScoredSet>& sets) {
  for (const ScoredSet& s : sets)
    if (!rocCurve(s.labels, s.scores).empty()) return true;
  return false;
}

ChartSpec rocChart(const std::string& name, const std::string& title, const std::vector<ScoredSet>& sets,
                   size_t maxPoints) {
  std::vector<std::pair<std::string, std::vector<CurvePoint>>> curves;
  for (const ScoredSet& s : sets) {
    const std::vector<CurvePoint> c = rocCurve(s.labels, s.scores);
    if (!c.empty()) curves.emplace_back(s.name + ": " + aucText(s.auc), thinCurve(c, maxPoints));
  }
  return curveChart(name, title, "false positive rate (1 - specificity)", "true positive rate (sensitivity)",
                    "linear", curves, [](wsi::JsonWriter& w) {
                      w.beginObject().key("data").beginObject().key("values").beginArray();
                      w.beginObject().key("x").value(0).key("y").value(0).endObject();
                      w.beginObject().key("x").value(1).key("y").value(1).endObject();
                      w.endArray().endObject();
                      w.key("mark").beginObject().key("type").value("line").key("color").value("#aaa")
                          .key("strokeDash").beginArray().value(4).value(4).endArray().endObject();
                      w.key("encoding").beginObject().key("x").beginObject().key("field").value("x")
                          .key("type").value("quantitative").endObject();
                      w.key("y").beginObject().key("field").value("y").key("type").value("quantitative")
                          .endObject().endObject().endObject();
                    });
}

ChartSpec precisionRecallChart(const std::string& name, const std::string& title,
                               const std::vector<ScoredSet>& sets, size_t maxPoints) {
  std::vector<std::pair<std::string, std::vector<CurvePoint>>> curves;
  std::vector<double> chance;
  for (const ScoredSet& s : sets) {
    const std::vector<CurvePoint> c = precisionRecallCurve(s.labels, s.scores);
    if (c.empty()) continue;
    size_t n = 0, pos = 0;
    for (size_t i = 0; i < s.labels.size(); ++i)
      if (!std::isnan(s.scores[i])) ++n, pos += s.labels[i] != 0;
    chance.push_back(static_cast<double>(pos) / static_cast<double>(n));
    char ap[48];
    std::snprintf(ap, sizeof ap, ": AP %.2f", averagePrecision(s.labels, s.scores));
    curves.emplace_back(s.name + ap, thinCurve(c, maxPoints));
  }
  // sklearn draws PR curves with steps-post over decreasing recall: Vega's step-after.
  return curveChart(name, title, "recall (sensitivity)", "precision (positive predictive value)", "step-after",
                    curves, [&](wsi::JsonWriter& w) {
                      w.beginObject().key("data").beginObject().key("values").beginArray();
                      for (double c : chance) w.beginObject().key("y").value(c).endObject();
                      w.endArray().endObject();
                      w.key("mark").beginObject().key("type").value("rule").key("color").value("#aaa")
                          .key("strokeDash").beginArray().value(4).value(4).endArray().endObject();
                      w.key("encoding").beginObject().key("y").beginObject().key("field").value("y")
                          .key("type").value("quantitative").endObject().endObject().endObject();
                    });
}

ChartSpec confusionChart(const std::string& name, const std::string& title, const ConfusionMatrix& cm,
                         const std::vector<std::string>& classes) {
  const int k = cm.numClasses();
  auto className = [&](int c) { return c < static_cast<int>(classes.size()) ? classes[static_cast<size_t>(c)] : std::to_string(c); };
  std::ostringstream o;
  wsi::JsonWriter w(o, chartStyle());
  const int side = std::max(160, std::min(480, 70 * k));
  w.beginObject().key("title").value(title).key("width").value(side).key("height").value(side);
  w.key("data").beginObject().key("values").beginArray();
  for (int t = 0; t < k; ++t) {
    int64_t row = 0;
    for (int p = 0; p < k; ++p) row += cm.at(t, p);
    for (int p = 0; p < k; ++p)
      w.beginObject().key("true").value(className(t)).key("predicted").value(className(p))
          .key("count").value(cm.at(t, p))
          .key("share").value(row > 0 ? static_cast<double>(cm.at(t, p)) / static_cast<double>(row) : 0.0)
          .endObject();
  }
  w.endArray().endObject();
  auto classAxis = [&](const std::string& f, const std::string& t) {
    field(w, f, "ordinal", t);
    w.key("sort").beginArray();
    for (int c = 0; c < k; ++c) w.value(className(c));
    w.endArray().endObject();
  };
  w.key("encoding").beginObject().key("x");
  classAxis("predicted", "predicted class");
  w.key("y");
  classAxis("true", "true class");
  w.endObject();
  w.key("layer").beginArray();
  w.beginObject().key("mark").value("rect").key("encoding").beginObject().key("color");
  field(w, "share", "quantitative", "share of the true class");
  w.key("scale").beginObject().key("domain").beginArray().value(0).value(1).endArray()
      .key("scheme").value("blues").endObject().endObject();
  tooltip(w, {{"true", "ordinal", "true", ""},
               {"predicted", "ordinal", "predicted", ""},
               {"count", "quantitative", "count", ""},
               {"share", "quantitative", "share of the row", ".1%"}});
  w.endObject().endObject();
  w.beginObject().key("mark").beginObject().key("type").value("text").key("fontSize").value(14).endObject();
  w.key("encoding").beginObject().key("text");
  field(w, "count", "quantitative", "");
  w.endObject();
  w.key("color").beginObject().key("condition").beginObject().key("test").value("datum.share > 0.5")
      .key("value").value("white").endObject().key("value").value("black").endObject();
  w.endObject().endObject();
  w.endArray().endObject();
  return {name, o.str()};
}

}  // namespace slidetrain
