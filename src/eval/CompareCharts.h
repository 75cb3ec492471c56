#pragma once
// The charts of compare.html as Vega-Lite specs (ChartSpec, drawn by the same page machinery as
// report.html): training curves of several runs overlaid, one colour per group, and a boxplot of
// one metric per group over its runs (folds, seeds): the figure of an optimizer study.
#include <string>
#include <vector>

#include "src/eval/Compare.h"
#include "src/eval/ReportCharts.h"

namespace slidetrain {

/// Which per-epoch values a curve chart draws.
enum class CompareCurve { Loss, Accuracy, Auc };

/// Per-epoch curves of every run of `groups`: colour = group, solid = train, dashed = val, one
/// line per run. Loss: train loss (epoch mean) and val loss; Accuracy: train and val patch
/// accuracy; Auc: val patch AUC. Empty (spec "") when no value is finite.
ChartSpec compareCurveChart(const std::string& name, const std::vector<CompareGroup>& groups, CompareCurve curve);

/// A box per group of `metric` over its runs (quartiles, whiskers min to max: with a handful of
/// folds Tukey outliers mean little, and an empty outlier layer makes Vega warn), each run a dot with
/// its name as tooltip. Runs without the metric are left out.
ChartSpec compareBoxplot(const std::string& name, const std::vector<CompareGroup>& groups, const std::string& metric);

}  // namespace slidetrain
