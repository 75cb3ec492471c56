#pragma once
// Evaluation of a model on a split: patch-level metrics (confusion matrix, per-class report,
// ROC AUC from probabilities, quadratic kappa), mean negative log-likelihood, and slide-level
// metrics from pooled patch probabilities. Used for validation during training and by `cv`.
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "distributed/Comm.h"
#include "src/eval/Aggregate.h"
#include "src/eval/Inference.h"
#include "src/eval/Metrics.h"
#include "src/eval/ReportCharts.h"
#include "src/models/ModelZoo.h"
#include "src/data/SplitData.h"

namespace slidetrain {

struct EvalResult {
  Metrics patch;       ///< over patches that were read (skipped patches left out)
  double loss = 0;     ///< mean NLL of the true class, -log(max(p, 1e-12)), unweighted
  int64_t patches = 0;
  Metrics slide;       ///< slide labels from pooled probabilities (binary: AUC of pooled scores)
  at::Tensor probabilities;  ///< [samples, classes]
};

/// Collective (predictProbabilities' allGather on the device plane `device`): call in the same
/// order on every rank; every rank gets the same result.
EvalResult evaluateSplit(Model& model, const SplitData& data, int numClasses,
                         const InferenceOptions& io, const SlidePooling& pooling, dist::Comm& device);

/// The value of a monitored metric name (val_loss, val_accuracy, val_f1, val_auc, val_kappa) of
/// an evaluation; NaN when undefined (AUC with one class).
double metricValue(const EvalResult& r, const std::string& name);

/// Binary tasks: each read patch of `data` with a label, scored by its positive-class probability
/// (`probs` [samples, 2]; NaN rows, patches not read, left out), named "patches". Its AUC has no
/// interval: patches of a slide are not independent samples.
ScoredSet patchScores(const SplitData& data, const at::Tensor& probs);

}  // namespace slidetrain
