#include "src/cli/MilCrossValidation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/ATen.h>

#include "src/cli/MilRun.h"
#include "src/config/Errors.h"
#include "src/data/Folds.h"
#include "src/eval/Metrics.h"
#include "wsi/Errors.h"
#include "wsi/Json.h"
#include "wsi/JsonWriter.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

/// One out-of-fold row of a fold's oof.csv.
struct OofRow {
  int fold;
  std::string line;  ///< as written, for cv_oof.csv
  int label;         ///< -1 unlabelled
  int prediction;
  double positive;   ///< probability of the last (positive) class
};

/// Out-of-fold accuracy and AUC of some rows (one fold's, or all pooled).
struct OofMetrics {
  int64_t bags = 0;
  double accuracy = NAN;
  AucCi auc;  ///< auc -1: undefined (one class, or more than two classes)
};

struct FoldResult {
  int64_t epochs = 0;
  std::string checkpoint;
  OofMetrics oof;
  int64_t testBags = 0;
  double testAccuracy = NAN, testAuc = NAN, testLo = NAN, testHi = NAN;
};

std::string readText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

wsi::JsonValue readJson(const fs::path& p) { return wsi::parseJson(readText(p), p.string()); }

/// The fingerprint in a fold's summary.json; "" when it is absent or unreadable (the fold runs).
std::string savedFingerprint(const fs::path& summary) {
  if (!fs::exists(summary)) return "";
  try {
    const wsi::JsonValue doc = readJson(summary);
    const wsi::JsonValue* f = doc.find("fingerprint");
    return f && f->isString() ? f->string : "";
  } catch (const wsi::DataError&) {
    return "";
  }
}

double number(const wsi::JsonValue& o, const char* key) {
  const wsi::JsonValue* v = o.find(key);
  return v && v->isNumber() && v->number >= 0 ? v->number : NAN;  // AUCs are -1 when undefined
}

int classIndex(const std::vector<std::string>& classes, const std::string& name) {
  const auto it = std::find(classes.begin(), classes.end(), name);
  return it == classes.end() ? -1 : static_cast<int>(it - classes.begin());
}

/// The rows of a fold's oof.csv (written by runMilOnce: id, label, patches, score, prediction,
/// p_<class>...).
std::vector<OofRow> readOof(const fs::path& file, const std::vector<std::string>& classes, int fold,
                            std::string& header) {
  std::ifstream in(file);
  if (!in) throw wsi::DataError(file.string() + ": missing; delete the fold's summary.json to run the fold again");
  std::getline(in, header);
  std::vector<OofRow> rows;
  std::string line;
  for (int n = 2; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    if (f.size() != 5 + classes.size())
      throw wsi::DataError(file.string() + ":" + std::to_string(n) + ": expected " + std::to_string(5 + classes.size()) +
                           " columns (a slide id with a comma?); delete the fold's summary.json to run it again");
    rows.push_back({fold, line, classIndex(classes, f[1]), classIndex(classes, f[4]), std::stod(f.back())});
  }
  return rows;
}

OofMetrics oofMetrics(const std::vector<OofRow>& rows, int numClasses, const MilSettings& mil, uint64_t seed) {
  OofMetrics m;
  std::vector<int> labels;
  std::vector<double> scores;
  double correct = 0;
  for (const OofRow& r : rows) {
    if (r.label < 0) continue;
    labels.push_back(r.label), scores.push_back(r.positive);
    correct += r.prediction == r.label;
  }
  m.bags = static_cast<int64_t>(labels.size());
  if (!labels.empty()) m.accuracy = correct / static_cast<double>(labels.size());
  if (numClasses == 2) m.auc = bootstrapAucCi(labels, scores, mil.bootstrap, seed);
  return m;
}

FoldResult readFold(const fs::path& dir, int fold, const std::vector<std::string>& classes, const MilSettings& mil,
                    uint64_t seed, std::vector<OofRow>& pooled, std::string& oofHeader) {
  const wsi::JsonValue s = readJson(dir / "summary.json");
  FoldResult r;
  r.epochs = static_cast<int64_t>(number(s, "epochs"));
  if (const wsi::JsonValue* c = s.find("checkpoint"); c && c->isString()) r.checkpoint = c->string;
  r.testBags = static_cast<int64_t>(number(s, "bags"));
  if (r.testBags > 0) {
    r.testAccuracy = number(s, "accuracy");
    r.testAuc = number(s, "auc"), r.testLo = number(s, "auc_lo"), r.testHi = number(s, "auc_hi");
  }
  const std::vector<OofRow> rows = readOof(dir / "oof.csv", classes, fold, oofHeader);
  r.oof = oofMetrics(rows, static_cast<int>(classes.size()), mil, seed);
  pooled.insert(pooled.end(), rows.begin(), rows.end());
  return r;
}

double orNan(double auc) { return auc >= 0 ? auc : NAN; }

std::string num(double v) { return std::isfinite(v) ? wsi::jsonNumber(v, 6) : ""; }

std::string aucText(double auc, double lo, double hi) {
  char b[64];
  if (!std::isfinite(auc)) return "-";
  std::snprintf(b, sizeof b, "%.4f [%.4f, %.4f]", auc, lo, hi);
  return b;
}

void writeCvSummary(const fs::path& milDir, const Settings& cfg, const std::vector<FoldResult>& folds,
                    const std::vector<OofRow>& pooledRows, const std::string& oofHeader, int numClasses) {
  const OofMetrics pooled = oofMetrics(pooledRows, numClasses, cfg.mil, cfg.run.seed);
  {
    std::ofstream oof(milDir / "cv_oof.csv");
    oof << "fold," << oofHeader << "\n";
    for (const OofRow& r : pooledRows) oof << r.fold << "," << r.line << "\n";
  }
  std::ofstream csv(milDir / "cv_folds.csv");
  csv << "fold,epochs,oof_bags,oof_accuracy,oof_auc,oof_auc_lo,oof_auc_hi,test_bags,test_accuracy,test_auc,"
         "test_auc_lo,test_auc_hi\n";
  const std::vector<std::string> keys{"oof_accuracy", "oof_auc", "test_accuracy", "test_auc"};
  std::vector<std::vector<double>> columns(keys.size());
  std::printf("mil cross-validation (%s, %zu folds; out of fold = the fold's own slides, early-stopped on):\n",
              cfg.mil.model.c_str(), folds.size());
  std::printf("  fold epochs  oof bags  oof acc  oof AUC [95%% CI]          test bags test acc  test AUC [95%% CI]\n");
  wsi::JsonStyle style;
  style.significantDigits = 6;
  std::ofstream out(milDir / "cv_summary.json");
  wsi::JsonWriter json(out, style);
  json.beginObject().key("model").value(cfg.mil.model).key("folds").beginArray();
  for (size_t f = 0; f < folds.size(); ++f) {
    const FoldResult& r = folds[f];
    const double oofAuc = orNan(r.oof.auc.auc), oofLo = orNan(r.oof.auc.lo), oofHi = orNan(r.oof.auc.hi);
    const std::vector<double> v{r.oof.accuracy, oofAuc, r.testAccuracy, r.testAuc};
    for (size_t c = 0; c < keys.size(); ++c) columns[c].push_back(v[c]);
    csv << f << "," << r.epochs << "," << r.oof.bags << "," << num(r.oof.accuracy) << "," << num(oofAuc) << ","
        << num(oofLo) << "," << num(oofHi) << "," << r.testBags << "," << num(r.testAccuracy) << ","
        << num(r.testAuc) << "," << num(r.testLo) << "," << num(r.testHi) << "\n";
    json.beginObject().key("fold").value(f).key("epochs").value(r.epochs).key("checkpoint").value(r.checkpoint)
        .key("oof_bags").value(r.oof.bags).key("oof_accuracy").value(r.oof.accuracy).key("oof_auc").value(oofAuc)
        .key("oof_auc_lo").value(oofLo).key("oof_auc_hi").value(oofHi).key("test_bags").value(r.testBags)
        .key("test_accuracy").value(r.testAccuracy).key("test_auc").value(r.testAuc)
        .key("test_auc_lo").value(r.testLo).key("test_auc_hi").value(r.testHi).endObject();
    std::printf("  %4zu %6lld  %8lld  %7.4f  %-25s %9lld %8.4f  %s\n", f, static_cast<long long>(r.epochs),
                static_cast<long long>(r.oof.bags), r.oof.accuracy, aucText(oofAuc, oofLo, oofHi).c_str(),
                static_cast<long long>(r.testBags), r.testAccuracy, aucText(r.testAuc, r.testLo, r.testHi).c_str());
  }
  json.endArray();
  std::printf("  mean ± sd over folds:\n");
  json.key("mean").beginObject();
  std::vector<std::pair<double, double>> stats;
  for (size_t c = 0; c < keys.size(); ++c) {
    stats.push_back(meanSd(columns[c]));
    json.key(keys[c]).value(stats.back().first);
    std::printf("    %-14s %.4f ± %.4f\n", keys[c].c_str(), stats.back().first, stats.back().second);
  }
  json.endObject().key("sd").beginObject();
  for (size_t c = 0; c < keys.size(); ++c) json.key(keys[c]).value(stats[c].second);
  const double auc = orNan(pooled.auc.auc), lo = orNan(pooled.auc.lo), hi = orNan(pooled.auc.hi);
  json.endObject().key("pooled_oof").beginObject().key("bags").value(pooled.bags).key("accuracy")
      .value(pooled.accuracy).key("auc").value(auc).key("auc_lo").value(lo).key("auc_hi").value(hi)
      .key("bootstrap").value(pooled.auc.reps).endObject().endObject();
  out << "\n";
  std::printf("  pooled out of fold (%lld bags): accuracy %.4f, AUC %s\n", static_cast<long long>(pooled.bags),
              pooled.accuracy, aucText(auc, lo, hi).c_str());
  std::printf("wrote %s, %s, %s\n", (milDir / "cv_folds.csv").c_str(), (milDir / "cv_summary.json").c_str(),
              (milDir / "cv_oof.csv").c_str());
}

}  // namespace

int runMilCrossValidation(const Settings& cfg, const dist::Planes& planes, const wsi::Cohort& cohort) {
  const bool lead = planes.rank() == 0;
  if (cfg.predict.split != "test")
    throw ConfigError("mil.folds: cross-validation scores the test split with each fold's model; predict.split "
                      "must be test (got " + cfg.predict.split + ")");
  const int k = cfg.mil.folds;
  const std::vector<int> fold = assignFolds(cohort, k, cfg.run.seed, "mil.folds");
  const fs::path milDir = fs::path(cfg.run.runDir) / "mil";
  std::vector<FoldResult> results;
  std::vector<OofRow> pooled;
  std::string oofHeader;
  for (int f = 0; f < k; ++f) {
    wsi::Cohort c = cohort;
    for (size_t i = 0; i < c.slides.size(); ++i)
      if (fold[i] >= 0) c.slides[i].split = fold[i] == f ? "val" : "train";
    const fs::path dir = milDir / ("fold_" + std::to_string(f));
    if (lead) std::printf("== mil fold_%d (%d of %d): %zu slides out of fold\n", f, f + 1, k, c.indicesOfSplit("val").size());
    const MilBags bags = collectMilBags(cfg, c, planes);
    // The lead rank decides whether the fold is finished, so that the ranks skip or train it together.
    at::Tensor done = at::zeros({1}, at::kLong);
    if (lead && savedFingerprint(dir / "summary.json") == milRunFingerprint(cfg, bags)) done.fill_(1);
    planes.host->broadcast(done, 0);
    if (done.item<int64_t>() != 0) {
      if (lead) std::printf("mil fold_%d: finished earlier (%s matches this experiment); skipped\n", f,
                            (dir / "summary.json").c_str());
    } else {
      runMilOnce(cfg, planes, c, bags, dir.string(), true);
    }
    if (!lead) continue;
    results.push_back(readFold(dir, f, cohort.classes, cfg.mil, cfg.run.seed, pooled, oofHeader));
    const FoldResult& r = results.back();
    std::printf("mil fold_%d: out of fold %lld bags, accuracy %.4f, AUC %s; test accuracy %.4f, AUC %s\n", f,
                static_cast<long long>(r.oof.bags), r.oof.accuracy,
                aucText(orNan(r.oof.auc.auc), r.oof.auc.lo, r.oof.auc.hi).c_str(), r.testAccuracy,
                aucText(r.testAuc, r.testLo, r.testHi).c_str());
    std::fflush(stdout);
  }
  if (lead) writeCvSummary(milDir, cfg, results, pooled, oofHeader, static_cast<int>(cohort.classes.size()));
  planes.host->barrier();
  return 0;
}

}  // namespace slidetrain
