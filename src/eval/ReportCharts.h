#pragma once
// The charts of report.html as Vega-Lite specifications (JSON text written with JsonWriter, the
// data inline): training curves and throughput per epoch from metrics.jsonl, ROC and
// precision-recall curves, and the confusion matrix. vega-embed draws them in the page
// (src/eval/Report.cpp); third_party/vega/README.md says which versions.
#include <string>
#include <vector>

#include "src/eval/Metrics.h"
#include "src/eval/TrainingLog.h"
#include "wsi/JsonWriter.h"

namespace slidetrain {

/// One chart: `name` makes the page element's id (chart-<name>); `spec` is the Vega-Lite JSON.
struct ChartSpec {
  std::string name, spec;
};

/// What the chart builders share (ReportCharts.cpp, CompareCharts.cpp).
namespace chart {
constexpr int kWidth = 380, kHeight = 240;
/// Compact JSON with 7 significant digits.
wsi::JsonStyle style();
/// Opens {"field": f, "type": t, "title": title} (title omitted when empty); the caller closes it.
void field(wsi::JsonWriter& w, const std::string& f, const std::string& type, const std::string& title);
/// One entry of a tooltip: a field (as field()) and its d3 number format (none when empty).
struct TooltipField {
  std::string field, type, title, format;
};
/// Writes "tooltip": [the fields, in order].
void tooltip(wsi::JsonWriter& w, const std::vector<TooltipField>& fields);
}  // namespace chart

/// Labels and scores of one binary scorer, for ROC and precision-recall curves.
struct ScoredSet {
  std::string name;  ///< what the legend calls it, e.g. "topk pooling (chosen)"
  std::vector<int> labels;      ///< 0 negative, anything else positive
  std::vector<double> scores;   ///< the positive class's score; NaN ones are left out
  AucCi auc;                    ///< the AUC (and a bootstrap CI where reps > 0) to show
};

/// Curves of a training log over optimizer steps: "loss" (train per step and per epoch, val per
/// epoch), "accuracy" (train per step and per epoch; val patches, val slides and val patch AUC per
/// epoch), "lr" (per step); and per epoch "throughput" (patches/s), "data_wait" (% of step time
/// waiting for data) and "gpu_busy" (% of time a kernel ran; only with a GPU), each with one line
/// per rank besides the run's figure when the log has several ranks. Per-step series need the
/// log's "steps" (else left out); a chart with no finite value is left out, so an empty log gives
/// none.
std::vector<ChartSpec> trainingCharts(const TrainingLog& log);

/// The ROC curves of `sets` (one line each, at most `maxPoints` points: Curves.h thinCurve) with
/// the chance diagonal; a set with one class only is left out. Legend: name, AUC and CI.
ChartSpec rocChart(const std::string& name, const std::string& title, const std::vector<ScoredSet>& sets,
                   size_t maxPoints = 1000);

/// The precision-recall curves of `sets` drawn as steps (as sklearn's PrecisionRecallDisplay),
/// with each set's positive share as its chance level. Legend: name and average precision.
ChartSpec precisionRecallChart(const std::string& name, const std::string& title,
                               const std::vector<ScoredSet>& sets, size_t maxPoints = 1000);

/// The confusion matrix as a heatmap: rows the true class, columns the predicted one, each cell
/// its count and its share of the row.
ChartSpec confusionChart(const std::string& name, const std::string& title, const ConfusionMatrix& cm,
                         const std::vector<std::string>& classes);

/// True when some set has both classes (rocChart would draw a curve).
bool anyRoc(const std::vector<ScoredSet>& sets);

}  // namespace slidetrain
