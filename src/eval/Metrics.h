#pragma once
// Classification metrics from labels, predictions and scores: accuracy, TP/TN/FP/FN counts and
// rates, per-class precision/recall/F1 with macro and weighted averages, confusion matrix, the
// classification report table, ROC AUC and Cohen's quadratic-weighted kappa.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace slidetrain {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int numClasses = 2);
  void add(int truth, int pred, int64_t count = 1);
  int numClasses() const { return k_; }
  int64_t at(int truth, int pred) const { return m_[truth * k_ + pred]; }
  /// Raw counts, row-major [truth][pred] (all-reduce this across ranks, then fromCounts).
  std::vector<int64_t>& counts() { return m_; }
  const std::vector<int64_t>& counts() const { return m_; }
  static ConfusionMatrix fromCounts(int k, std::vector<int64_t> counts);
  int64_t total() const;

 private:
  int k_;
  std::vector<int64_t> m_;
};

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct Metrics {
  double accuracy = 0;
  // Binary view (positive class = 1; for k > 2 one-vs-rest of class 1).
  int64_t tp = 0, tn = 0, fp = 0, fn = 0;
  double tpr = 0, tnr = 0, fnr = 0, fpr = 0;
  std::vector<ClassMetrics> perClass;
  ClassMetrics macro, weighted;
  double rocAuc = -1;     ///< -1 when undefined (one class only or no scores)
  double kappaQuadratic = 0;
  ConfusionMatrix confusion{2};

  static Metrics compute(const ConfusionMatrix& cm, const std::vector<int>& labels = {},
                         const std::vector<double>& positiveScores = {});
  std::string toJson() const;
  /// sklearn-style classification report table.
  std::string report(const std::vector<std::string>& classNames) const;
};

/// ROC AUC of scores for binary labels (ties averaged); -1 when one class is absent.
double rocAuc(const std::vector<int>& labels, const std::vector<double>& scores);

/// Youden's J threshold: of the distinct scores t, the one maximising TPR - FPR when a sample
/// is called positive at score >= t (labels: 0 negative, anything else positive); ties go to
/// the highest such t (the fewest positive calls). Returned is the midpoint between that t and
/// the next lower score (t itself when it is the lowest), which makes the same calls on these
/// samples but does not sit on the edge of the lowest positive ones. NaN scores are left out;
/// NaN when the labels (with a score) hold one class only.
double youdenThreshold(const std::vector<int>& labels, const std::vector<double>& scores);

/// A percentile-bootstrap confidence interval of the ROC AUC.
struct AucCi {
  double auc = -1, lo = -1, hi = -1;  ///< -1 when undefined (one class)
  int reps = 0;                       ///< resamples the interval comes from
};

/// auc = rocAuc(labels, scores); [lo, hi] = the (1 - level)/2 and (1 + level)/2 quantiles
/// (quantileLinear) of the AUCs of `reps` resamples of the samples with replacement. A resample
/// holding one class only is drawn again; after 100 * reps draws in all the interval comes from
/// the resamples so far (`reps` says how many). Deterministic for a seed (std::mt19937_64).
AucCi bootstrapAucCi(const std::vector<int>& labels, const std::vector<double>& scores,
                     int reps = 1000, uint64_t seed = 0, double level = 0.95);

/// The q-quantile (q in [0, 1]) of `values`, linearly interpolated between the order statistics
/// as numpy.quantile's default: with v sorted, h = (n - 1) q, v[floor h] + (h - floor h)
/// (v[floor h + 1] - v[floor h]). NaN for an empty list.
double quantileLinear(std::vector<double> values, double q);
double quadraticKappa(const ConfusionMatrix& cm);

/// Mean and sample standard deviation (n - 1) of the finite values of `v` (NaNs left out, as
/// an undefined AUC of a fold); {NaN, NaN} when none is finite, sd 0 for a single value.
std::pair<double, double> meanSd(const std::vector<double>& v);

}  // namespace slidetrain
