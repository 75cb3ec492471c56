// Classification metrics; definitions follow scikit-learn (zero_division=0, ROC AUC with tied
// scores averaged, Cohen's kappa with quadratic weights) so numbers can be checked against it.
#include "src/eval/Metrics.h"

#include "wsi/JsonWriter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <utility>
#include <stdexcept>

namespace slidetrain {
namespace {

double ratio(double num, double den) { return den > 0 ? num / den : 0.0; }

}  // namespace

ConfusionMatrix::ConfusionMatrix(int numClasses) : k_(numClasses) {
  if (numClasses < 1) throw std::invalid_argument("ConfusionMatrix: numClasses must be >= 1");
  m_.assign(static_cast<size_t>(k_) * k_, 0);
}

void ConfusionMatrix::add(int truth, int pred, int64_t count) {
  if (truth < 0 || truth >= k_ || pred < 0 || pred >= k_)
    throw std::out_of_range("ConfusionMatrix::add: class index (" + std::to_string(truth) + ", " +
                            std::to_string(pred) + ") outside [0, " + std::to_string(k_) + ")");
  m_[static_cast<size_t>(truth) * k_ + pred] += count;
}

ConfusionMatrix ConfusionMatrix::fromCounts(int k, std::vector<int64_t> counts) {
  if (counts.size() != static_cast<size_t>(k) * k)
    throw std::invalid_argument("ConfusionMatrix::fromCounts: expected " +
                                std::to_string(k * k) + " counts, got " +
                                std::to_string(counts.size()));
  ConfusionMatrix cm(k);
  cm.m_ = std::move(counts);
  return cm;
}

int64_t ConfusionMatrix::total() const { return std::accumulate(m_.begin(), m_.end(), int64_t{0}); }

Metrics Metrics::compute(const ConfusionMatrix& cm, const std::vector<int>& labels,
                         const std::vector<double>& positiveScores) {
  Metrics out;
  out.confusion = cm;
  const int k = cm.numClasses();
  const int64_t total = cm.total();
  std::vector<int64_t> rowSum(k, 0), colSum(k, 0);
  int64_t correct = 0;
  for (int t = 0; t < k; ++t)
    for (int p = 0; p < k; ++p) {
      rowSum[t] += cm.at(t, p);
      colSum[p] += cm.at(t, p);
      if (t == p) correct += cm.at(t, p);
    }
  out.accuracy = ratio(correct, total);

  if (k >= 2) {  // class 1 against the rest
    out.tp = cm.at(1, 1);
    out.fn = rowSum[1] - out.tp;
    out.fp = colSum[1] - out.tp;
    out.tn = total - out.tp - out.fn - out.fp;
    out.tpr = ratio(out.tp, out.tp + out.fn);
    out.fnr = ratio(out.fn, out.tp + out.fn);
    out.tnr = ratio(out.tn, out.tn + out.fp);
    out.fpr = ratio(out.fp, out.tn + out.fp);
  }

  out.perClass.resize(k);
  for (int c = 0; c < k; ++c) {
    ClassMetrics& m = out.perClass[c];
    m.precision = ratio(cm.at(c, c), colSum[c]);
    m.recall = ratio(cm.at(c, c), rowSum[c]);
    m.f1 = ratio(2 * m.precision * m.recall, m.precision + m.recall);
    m.support = rowSum[c];
    out.macro.precision += m.precision / k;
    out.macro.recall += m.recall / k;
    out.macro.f1 += m.f1 / k;
    double w = ratio(m.support, total);
    out.weighted.precision += w * m.precision;
    out.weighted.recall += w * m.recall;
    out.weighted.f1 += w * m.f1;
  }
  out.macro.support = out.weighted.support = total;

  if (!labels.empty() && !positiveScores.empty()) {
    std::vector<int> positive(labels.size());
    for (size_t i = 0; i < labels.size(); ++i) positive[i] = labels[i] == 1 ? 1 : 0;
    out.rocAuc = slidetrain::rocAuc(positive, positiveScores);
  }
  out.kappaQuadratic = quadraticKappa(cm);
  return out;
}

double rocAuc(const std::vector<int>& labels, const std::vector<double>& scores) {
  if (labels.size() != scores.size())
    throw std::invalid_argument("rocAuc: " + std::to_string(labels.size()) + " labels but " +
                                std::to_string(scores.size()) + " scores");
  const size_t n = labels.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U: AUC = (sum of positive ranks - nPos(nPos+1)/2) / (nPos nNeg), where tied
  // scores share their average rank (equivalent to counting a tie as half a correct pair).
  double positiveRankSum = 0;
  int64_t nPos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && scores[order[j + 1]] == scores[order[i]]) ++j;
    double avgRank = (static_cast<double>(i + 1) + static_cast<double>(j + 1)) / 2.0;
    for (size_t r = i; r <= j; ++r)
      if (labels[order[r]] != 0) {
        positiveRankSum += avgRank;
        ++nPos;
      }
    i = j + 1;
  }
  const int64_t nNeg = static_cast<int64_t>(n) - nPos;
  if (nPos == 0 || nNeg == 0) return -1;
  return (positiveRankSum - nPos * (nPos + 1) / 2.0) /
         (static_cast<double>(nPos) * static_cast<double>(nNeg));
}

double youdenThreshold(const std::vector<int>& labels, const std::vector<double>& scores) {
  if (labels.size() != scores.size())
    throw std::invalid_argument("youdenThreshold: " + std::to_string(labels.size()) + " labels but " +
                                std::to_string(scores.size()) + " scores");
  std::vector<std::pair<double, bool>> s;  // (score, positive), NaN scores left out
  for (size_t i = 0; i < labels.size(); ++i)
    if (!std::isnan(scores[i])) s.emplace_back(scores[i], labels[i] != 0);
  int64_t nPos = 0;
  for (const auto& x : s) nPos += x.second;
  const int64_t nNeg = static_cast<int64_t>(s.size()) - nPos;
  if (nPos == 0 || nNeg == 0) return std::numeric_limits<double>::quiet_NaN();
  // Walk the distinct scores from the highest down: at threshold t the positive calls are the
  // samples with score >= t. J = tp/nPos - fp/nNeg compares exactly as tp*nNeg - fp*nPos; only a
  // strictly larger J replaces the best, so ties keep the higher threshold.
  std::sort(s.begin(), s.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  int64_t tp = 0, fp = 0, bestJ = 0;
  double best = std::numeric_limits<double>::quiet_NaN();
  size_t bestEnd = 0;  // index of the first score below the best t
  for (size_t i = 0; i < s.size();) {
    const double t = s[i].first;
    for (; i < s.size() && s[i].first == t; ++i) (s[i].second ? tp : fp) += 1;
    const int64_t j = tp * nNeg - fp * nPos;
    if (std::isnan(best) || j > bestJ) best = t, bestJ = j, bestEnd = i;
  }
  return bestEnd < s.size() ? 0.5 * (best + s[bestEnd].first) : best;
}

double quantileLinear(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double h = (static_cast<double>(v.size()) - 1) * std::clamp(q, 0.0, 1.0);
  const size_t lo = static_cast<size_t>(std::floor(h));
  if (lo + 1 >= v.size()) return v.back();
  return v[lo] + (h - static_cast<double>(lo)) * (v[lo + 1] - v[lo]);
}

AucCi bootstrapAucCi(const std::vector<int>& labels, const std::vector<double>& scores, int reps,
                     uint64_t seed, double level) {
  if (labels.size() != scores.size())
    throw std::invalid_argument("bootstrapAucCi: " + std::to_string(labels.size()) + " labels but " +
                                std::to_string(scores.size()) + " scores");
  if (reps < 1) throw std::invalid_argument("bootstrapAucCi: reps must be >= 1, got " + std::to_string(reps));
  if (!(level > 0 && level < 1))
    throw std::invalid_argument("bootstrapAucCi: level must be in (0, 1), got " + std::to_string(level));
  AucCi ci;
  ci.auc = rocAuc(labels, scores);
  if (ci.auc < 0) return ci;  // one class: no AUC, no interval
  const size_t n = labels.size();
  std::mt19937_64 rng(seed);
  std::vector<double> aucs;
  aucs.reserve(static_cast<size_t>(reps));
  std::vector<int> y(n);
  std::vector<double> s(n);
  // Modulo bias is below n / 2^64: negligible, and unlike std::uniform_int_distribution the
  // draws are the same with every standard library.
  for (int64_t draws = 0; static_cast<int>(aucs.size()) < reps && draws < 100 * int64_t{reps}; ++draws) {
    for (size_t i = 0; i < n; ++i) {
      const size_t k = static_cast<size_t>(rng() % n);
      y[i] = labels[k], s[i] = scores[k];
    }
    const double a = rocAuc(y, s);
    if (a >= 0) aucs.push_back(a);  // a resample of one class has no AUC: draw again
  }
  ci.reps = static_cast<int>(aucs.size());
  if (ci.reps == 0) return ci;
  ci.lo = quantileLinear(aucs, (1 - level) / 2);
  ci.hi = quantileLinear(std::move(aucs), (1 + level) / 2);
  return ci;
}

double quadraticKappa(const ConfusionMatrix& cm) {
  const int k = cm.numClasses();
  const double total = static_cast<double>(cm.total());
  if (k < 2 || total == 0) return 0;
  std::vector<double> rowSum(k, 0), colSum(k, 0);
  for (int t = 0; t < k; ++t)
    for (int p = 0; p < k; ++p) {
      rowSum[t] += cm.at(t, p);
      colSum[p] += cm.at(t, p);
    }
  double observed = 0, expected = 0;
  for (int t = 0; t < k; ++t)
    for (int p = 0; p < k; ++p) {
      double w = static_cast<double>((t - p) * (t - p));  // scale cancels in the ratio
      observed += w * cm.at(t, p);
      expected += w * rowSum[t] * colSum[p] / total;
    }
  // Degenerate (sklearn gives NaN): all mass on one class for truth or prediction.
  return expected > 0 ? 1.0 - observed / expected : 0.0;
}

std::string Metrics::toJson() const {
  std::ostringstream j;
  wsi::JsonWriter w(j, wsi::JsonStyle::compact());
  auto array = [&w](const char* name, auto value) {
    w.key(name).beginArray();
    for (const auto& c : value) w.value(c);
    w.endArray();
  };
  std::vector<double> precision, recall, f1;
  std::vector<int64_t> support;
  for (const auto& c : perClass) {
    precision.push_back(c.precision);
    recall.push_back(c.recall);
    f1.push_back(c.f1);
    support.push_back(c.support);
  }
  w.beginObject().key("accuracy").value(accuracy).key("tp").value(tp).key("tn").value(tn);
  w.key("fp").value(fp).key("fn").value(fn).key("tpr").value(tpr).key("tnr").value(tnr);
  w.key("fnr").value(fnr).key("fpr").value(fpr);
  array("precision", precision);
  array("recall", recall);
  array("f1", f1);
  array("support", support);
  w.key("macro_precision").value(macro.precision).key("macro_recall").value(macro.recall);
  w.key("macro_f1").value(macro.f1).key("weighted_precision").value(weighted.precision);
  w.key("weighted_recall").value(weighted.recall).key("weighted_f1").value(weighted.f1);
  w.key("roc_auc");
  if (rocAuc < 0) w.value(nullptr);  // undefined (one class present)
  else w.value(rocAuc);
  w.key("kappa_quadratic").value(kappaQuadratic).key("confusion").beginArray();
  for (int t = 0; t < confusion.numClasses(); ++t) {
    w.beginArray();
    for (int p = 0; p < confusion.numClasses(); ++p) w.value(confusion.at(t, p));
    w.endArray();
  }
  w.endArray().endObject();
  return j.str();
}

std::string Metrics::report(const std::vector<std::string>& classNames) const {
  // Same layout as sklearn.metrics.classification_report(digits=2).
  const int k = static_cast<int>(perClass.size());
  std::vector<std::string> names(k);
  for (int c = 0; c < k; ++c)
    names[c] = c < static_cast<int>(classNames.size()) ? classNames[c] : std::to_string(c);
  int width = static_cast<int>(std::string("weighted avg").size());
  for (const auto& n : names) width = std::max(width, static_cast<int>(n.size()));

  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%*s  %9s %9s %9s %9s\n\n", width, "", "precision", "recall",
                "f1-score", "support");
  out += buf;
  auto row = [&](const std::string& name, const ClassMetrics& m) {
    std::snprintf(buf, sizeof buf, "%*s  %9.2f %9.2f %9.2f %9lld\n", width, name.c_str(),
                  m.precision, m.recall, m.f1, static_cast<long long>(m.support));
    out += buf;
  };
  for (int c = 0; c < k; ++c) row(names[c], perClass[c]);
  out += "\n";
  std::snprintf(buf, sizeof buf, "%*s  %9s %9s %9.2f %9lld\n", width, "accuracy", "", "",
                accuracy, static_cast<long long>(macro.support));
  out += buf;
  row("macro avg", macro);
  row("weighted avg", weighted);
  return out;
}

std::pair<double, double> meanSd(const std::vector<double>& v) {
  std::vector<double> f;
  for (double x : v)
    if (std::isfinite(x)) f.push_back(x);
  if (f.empty()) return {NAN, NAN};
  double m = 0;
  for (double x : f) m += x;
  m /= static_cast<double>(f.size());
  double ss = 0;
  for (double x : f) ss += (x - m) * (x - m);
  return {m, f.size() > 1 ? std::sqrt(ss / static_cast<double>(f.size() - 1)) : 0.0};
}

}  // namespace slidetrain
