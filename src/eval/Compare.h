#pragma once
// `slidetrain compare`: training runs read back from their folders (a `train` run_dir, the folds
// of a `cv` run_dir, a `mil` run_dir and its folds), grouped, with each run's final metrics, its
// training log, and mean ± sd per group; compare.csv's text. The page is ComparePage.h's.
// docs/compare.md describes the folders read, the metric names and the CSV's columns.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "src/eval/TrainingLog.h"

namespace slidetrain {

/// One trained model: a `train` run_dir, a fold of `cv` (run_dir/fold_k) or of `mil`
/// (run_dir/mil/fold_k), or the model of a `mil` run (run_dir/mil).
struct CompareRun {
  std::string name;  ///< within its group: "fold_0", or the folder's name
  std::string dir;
  std::map<std::string, double> metrics;  ///< final metrics by name (compareMetricNames()); absent: not known
  TrainingLog log;                        ///< its metrics.jsonl
  std::string report;                     ///< its report.html, "" when it has none

  /// The metric's value; NaN when absent.
  double metric(const std::string& name) const;
};

/// What compare shows as one entry: a cv (or mil cv) folder's folds, or one or more runs given
/// the same label (seeds).
struct CompareGroup {
  std::string label;              ///< NAME of NAME=DIR, else the folder's name
  std::string kind;               ///< "train", "cv", "mil", "mil cv"; several folders: joined with "+"
  std::vector<std::string> dirs;  ///< the folders given
  std::vector<CompareRun> runs;
  std::vector<std::string> notes;  ///< lines of metrics.jsonl left out, and the like
};

/// A command-line argument: "NAME=DIR", or "DIR" (labelled with its last path component).
struct CompareInput {
  std::string label, dir;
};
CompareInput parseCompareInput(const std::string& arg);

/// The metric names compare knows, in table order: from the last line of metrics.jsonl (epochs,
/// steps, train_seconds, train_loss, train_accuracy, val_loss, val_accuracy, val_auc,
/// val_slide_accuracy), from a cv's cv_summary.json (patch_accuracy, patch_auc, patch_f1_macro,
/// patch_kappa, patch_loss, slide_accuracy, slide_auc, slide_f1_macro), from a mil cv's
/// mil/cv_summary.json (oof_accuracy, oof_auc), and from predict's slide_metrics.json (its
/// chosen pooling) or mil's summary.json (predict_accuracy, predict_auc).
const std::vector<std::string>& compareMetricNames();

/// The per-fold columns of `slidetrain cv`'s cv_summary.json/.csv, in order (src/cli/CrossValidation
/// writes them, compare reads them): patch accuracy, ROC AUC, macro F1, quadratic kappa, loss;
/// slide accuracy, AUC, macro F1; then the positive class's F1 and the patch TP/TN/FP/FN rates.
const std::vector<std::string>& cvSummaryColumns();

/// Reads one folder as one group. Throws wsi::DataError naming the file when the folder is no
/// run folder, a file it needs is missing, or its JSON does not parse.
CompareGroup readCompareGroup(const std::string& label, const std::string& dir);

/// Reads every input; inputs with the same label become one group (their runs pooled, e.g. one
/// run per seed). Groups keep the order of their first input.
std::vector<CompareGroup> readComparison(const std::vector<CompareInput>& inputs);

/// Mean and sample sd (n - 1) of a metric over a group's runs with a finite value, and n.
struct MetricSummary {
  double mean, sd;
  size_t n;
};
MetricSummary summarizeMetric(const CompareGroup& group, const std::string& metric);

/// The metrics that some run of `groups` has, in compareMetricNames() order.
std::vector<std::string> presentMetrics(const std::vector<CompareGroup>& groups);

/// The boxplot's metric when none is asked for: the first of patch_auc, oof_auc, val_auc,
/// val_accuracy, predict_auc, predict_accuracy, train_accuracy that every group has (a finite
/// value in one of its runs at least), else the first that some group has; "" when none.
std::string defaultCompareMetric(const std::vector<CompareGroup>& groups);

/// Throws UsageError when `metric` is no known name (the message lists them) or no run has it.
void checkCompareMetric(const std::vector<CompareGroup>& groups, const std::string& metric);

/// compare.csv: columns group, run, kind, n, dir, then presentMetrics(); one row per run (n 1),
/// then per group a "mean" and an "sd" row (run = mean / sd, n = the group's runs). Numbers with
/// 6 significant digits; empty where not known.
std::string compareCsv(const std::vector<CompareGroup>& groups);

}  // namespace slidetrain
