// CompareCharts: see CompareCharts.h.
#include "src/eval/CompareCharts.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <utility>

namespace slidetrain {
namespace {

using chart::field;
using chart::tooltip;

/// "color": group, in the groups' order (so every chart gives a group the same colour).
void groupColour(wsi::JsonWriter& w, const std::vector<CompareGroup>& groups, bool legend) {
  w.key("color");
  field(w, "group", "nominal", "");
  w.key("title").value(nullptr).key("sort").beginArray();
  for (const CompareGroup& g : groups) w.value(g.label);
  w.endArray().key("scale").beginObject().key("domain").beginArray();
  for (const CompareGroup& g : groups) w.value(g.label);
  w.endArray().endObject();
  if (!legend) w.key("legend").value(nullptr);
  w.endObject();
}

}  // namespace

ChartSpec compareCurveChart(const std::string& name, const std::vector<CompareGroup>& groups, CompareCurve curve) {
  using Get = double (*)(const EpochRecord&);
  std::vector<std::pair<std::string, Get>> series;
  std::string title, yTitle;
  switch (curve) {
    case CompareCurve::Loss:
      title = "Loss per epoch", yTitle = "loss";
      series = {{"train", [](const EpochRecord& e) { return e.loss; }},
                {"val", [](const EpochRecord& e) { return e.valLoss; }}};
      break;
    case CompareCurve::Accuracy:
      title = "Patch accuracy per epoch", yTitle = "accuracy";
      series = {{"train", [](const EpochRecord& e) { return e.accuracy; }},
                {"val", [](const EpochRecord& e) { return e.valAccuracy; }}};
      break;
    case CompareCurve::Auc:
      title = "Validation patch AUC per epoch", yTitle = "AUC";
      series = {{"val", [](const EpochRecord& e) { return e.valAuc; }}};
      break;
  }
  std::ostringstream o;
  wsi::JsonWriter w(o, chart::style());
  w.beginObject().key("title").value(title).key("width").value(chart::kWidth).key("height").value(chart::kHeight);
  w.key("data").beginObject().key("values").beginArray();
  size_t drawn = 0;
  for (const CompareGroup& g : groups)
    for (const CompareRun& r : g.runs)
      for (const EpochRecord& e : r.log.epochs)
        for (const auto& [s, get] : series) {
          const double v = get(e);
          if (!std::isfinite(v)) continue;
          w.beginObject().key("group").value(g.label).key("run").value(g.label + " " + r.name).key("series").value(s)
              .key("epoch").value(e.epoch).key("value").value(v).endObject();
          ++drawn;
        }
  w.endArray().endObject();
  w.key("mark").beginObject().key("type").value("line").key("point").value(true).key("strokeWidth").value(1.5)
      .endObject();
  w.key("encoding").beginObject().key("x");
  field(w, "epoch", "quantitative", "epoch");
  w.key("axis").beginObject().key("tickMinStep").value(1).key("format").value("d").endObject().endObject();
  w.key("y");
  field(w, "value", "quantitative", yTitle);
  w.key("scale").beginObject().key("zero").value(false).endObject().endObject();
  groupColour(w, groups, true);
  w.key("strokeDash");
  field(w, "series", "nominal", "");
  w.key("title").value(nullptr).key("sort").beginArray().value("train").value("val").endArray().endObject();
  w.key("detail");
  field(w, "run", "nominal", "");
  w.endObject();
  tooltip(w, {{"run", "nominal", "run", ""},
               {"series", "nominal", "", ""},
               {"epoch", "quantitative", "", ""},
               {"value", "quantitative", yTitle, ".4f"}});
  w.endObject().endObject();
  return drawn > 0 ? ChartSpec{name, o.str()} : ChartSpec{};
}

ChartSpec compareBoxplot(const std::string& name, const std::vector<CompareGroup>& groups, const std::string& metric) {
  std::ostringstream o;
  wsi::JsonWriter w(o, chart::style());
  w.beginObject().key("title").value(metric + " per run (box: quartiles; whiskers: min to max; dots: runs)")
      .key("width").value(std::max(chart::kWidth, 90 * static_cast<int>(groups.size())))
      .key("height").value(chart::kHeight);
  w.key("data").beginObject().key("values").beginArray();
  for (const CompareGroup& g : groups)
    for (const CompareRun& r : g.runs) {
      const double v = r.metric(metric);
      if (std::isfinite(v))
        w.beginObject().key("group").value(g.label).key("run").value(r.name).key("value").value(v).endObject();
    }
  w.endArray().endObject();
  w.key("encoding").beginObject().key("x");
  field(w, "group", "nominal", "");
  w.key("sort").beginArray();
  for (const CompareGroup& g : groups) w.value(g.label);
  w.endArray().key("axis").beginObject().key("labelAngle").value(-30).endObject().endObject();
  w.key("y");
  field(w, "value", "quantitative", metric);
  w.key("scale").beginObject().key("zero").value(false).endObject().endObject();
  groupColour(w, groups, false);
  w.endObject();
  w.key("layer").beginArray();
  w.beginObject().key("mark").beginObject().key("type").value("boxplot").key("extent").value("min-max")
      .key("opacity").value(0.5).endObject().endObject();
  w.beginObject().key("mark").beginObject().key("type").value("point").key("filled").value(true)
      .key("size").value(40).endObject();
  w.key("encoding").beginObject();
  tooltip(w, {{"group", "nominal", "", ""}, {"run", "nominal", "", ""}, {"value", "quantitative", metric, ".4f"}});
  w.endObject().endObject();
  w.endArray().endObject();
  return {name, o.str()};
}

}  // namespace slidetrain
