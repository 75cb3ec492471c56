// Compare: see Compare.h. The folders are the ones src/cli/CrossValidation.cpp, src/cli/MilRun.cpp,
// src/cli/MilCrossValidation.cpp and src/train/EpochReport.cpp write.
#include "src/eval/Compare.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "src/config/Errors.h"
#include "src/eval/Metrics.h"
#include "wsi/Errors.h"
#include "wsi/Json.h"
#include "wsi/JsonWriter.h"

namespace fs = std::filesystem;

namespace slidetrain {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

wsi::JsonValue readJsonFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw wsi::DataError(path.string() + ": missing or unreadable");
  const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  wsi::JsonValue v = wsi::parseJson(text, path.string());  // its errors name path:line:col
  if (!v.isObject()) throw wsi::DataError(path.string() + ": expected a JSON object");
  return v;
}

double numberAt(const wsi::JsonValue& v, const std::string& key) {
  const wsi::JsonValue* n = v.find(key);
  return n && n->isNumber() ? n->number : kNaN;
}

void put(CompareRun& run, const std::string& name, double value) {
  if (std::isfinite(value)) run.metrics[name] = value;
}

/// A run folder's metrics.jsonl (required) and its last epoch's metrics.
void readLog(CompareRun& run, CompareGroup& group) {
  const fs::path path = fs::path(run.dir) / "metrics.jsonl";
  if (!fs::is_regular_file(path))
    throw wsi::DataError(path.string() + ": missing (every trained model's folder has one)");
  run.log = readTrainingLog(path.string());
  if (run.log.epochs.empty())
    throw wsi::DataError(path.string() + ": no line with an epoch could be read" +
                         (run.log.notes.empty() ? std::string() : " (" + run.log.notes.front() + ")"));
  for (const std::string& n : run.log.notes) group.notes.push_back(path.string() + ": " + n);
  const EpochRecord& last = run.log.epochs.back();
  double seconds = 0;
  for (const EpochRecord& e : run.log.epochs) seconds += std::isfinite(e.seconds) ? e.seconds : 0;
  put(run, "epochs", static_cast<double>(last.epoch));
  if (last.step > 0) put(run, "steps", static_cast<double>(last.step));
  if (seconds > 0) put(run, "train_seconds", seconds);
  put(run, "train_loss", last.loss);
  put(run, "train_accuracy", last.accuracy);
  put(run, "val_loss", last.valLoss);
  put(run, "val_accuracy", last.valAccuracy);
  put(run, "val_auc", last.valAuc);
  put(run, "val_slide_accuracy", last.valSlideAccuracy);
  const fs::path report = fs::path(run.dir) / "report.html";
  if (fs::is_regular_file(report)) run.report = report.string();
}

/// predict's slide_metrics.json (its chosen pooling method), when the run has one.
void readSlideMetrics(CompareRun& run) {
  const fs::path path = fs::path(run.dir) / "slide_metrics.json";
  if (!fs::is_regular_file(path)) return;
  const wsi::JsonValue v = readJsonFile(path);
  const wsi::JsonValue* chosen = v.find("chosen");
  const wsi::JsonValue* methods = v.find("methods");
  const wsi::JsonValue* m = chosen && chosen->isString() && methods ? methods->find(chosen->string) : nullptr;
  if (!m) throw wsi::DataError(path.string() + ": no \"methods\" entry for its \"chosen\" method");
  put(run, "predict_accuracy", numberAt(*m, "accuracy"));
  put(run, "predict_auc", numberAt(*m, "auc"));
}

/// mil's summary.json: accuracy and AUC of the predicted split (none when it had no labels).
void readMilSummary(CompareRun& run) {
  const wsi::JsonValue v = readJsonFile(fs::path(run.dir) / "summary.json");
  if (!(numberAt(v, "bags") > 0)) return;
  put(run, "predict_accuracy", numberAt(v, "accuracy"));
  const double auc = numberAt(v, "auc");
  if (auc >= 0) put(run, "predict_auc", auc);
}

/// The folds of a cv_summary.json, each read from <base>/fold_<k> with `read`, then given the
/// summary's `columns` of its row.
void readFolds(CompareGroup& g, const fs::path& summary, const fs::path& base, const std::vector<std::string>& columns,
               void (*read)(CompareRun&)) {
  const wsi::JsonValue s = readJsonFile(summary);
  const wsi::JsonValue* folds = s.find("folds");
  if (!folds || !folds->isArray() || folds->array.empty())
    throw wsi::DataError(summary.string() + ": no \"folds\" array");
  for (const wsi::JsonValue& row : folds->array) {
    const double f = numberAt(row, "fold");
    if (!(f >= 0)) throw wsi::DataError(summary.string() + ": a fold without its \"fold\" number");
    CompareRun run;
    run.name = "fold_" + std::to_string(static_cast<int64_t>(f));
    run.dir = (base / run.name).string();
    readLog(run, g);
    if (read) read(run);
    for (const std::string& c : columns) put(run, c, numberAt(row, c));
    g.runs.push_back(std::move(run));
  }
}

std::string baseName(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  const std::string name = p.filename().string();
  return name.empty() || name == "." ? fs::absolute(p).lexically_normal().filename().string() : name;
}

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

std::string csvNumber(double v) { return std::isfinite(v) ? wsi::jsonNumber(v, 6) : ""; }

}  // namespace

double CompareRun::metric(const std::string& name) const {
  const auto it = metrics.find(name);
  return it == metrics.end() ? kNaN : it->second;
}

CompareInput parseCompareInput(const std::string& arg) {
  const size_t eq = arg.find('=');
  // A folder whose name holds '=' is taken as NAME=DIR only when DIR exists or NAME is no folder.
  if (eq != std::string::npos && eq > 0 && !(fs::is_directory(arg) && !fs::is_directory(arg.substr(eq + 1))))
    return {arg.substr(0, eq), arg.substr(eq + 1)};
  return {baseName(arg), arg};
}

const std::vector<std::string>& compareMetricNames() {
  static const std::vector<std::string> names{
      "epochs", "steps", "train_seconds", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc",
      "val_slide_accuracy", "patch_accuracy", "patch_auc", "patch_f1_macro", "patch_kappa", "patch_loss",
      "slide_accuracy", "slide_auc", "slide_f1_macro", "patch_f1", "patch_tpr", "patch_tnr", "patch_fpr",
      "patch_fnr", "oof_accuracy", "oof_auc", "predict_accuracy", "predict_auc"};
  return names;
}

const std::vector<std::string>& cvSummaryColumns() {
  static const std::vector<std::string> names{"patch_accuracy", "patch_auc", "patch_f1_macro", "patch_kappa",
                                              "patch_loss", "slide_accuracy", "slide_auc", "slide_f1_macro",
                                              "patch_f1", "patch_tpr", "patch_tnr", "patch_fpr", "patch_fnr"};
  return names;
}

CompareGroup readCompareGroup(const std::string& label, const std::string& dir) {
  const fs::path d(dir);
  if (!fs::is_directory(d)) throw wsi::DataError(dir + ": no such folder");
  CompareGroup g;
  g.label = label;
  g.dirs.push_back(dir);
  if (fs::exists(d / "cv_summary.json")) {
    g.kind = "cv";
    readFolds(g, d / "cv_summary.json", d, cvSummaryColumns(), nullptr);
  } else if (fs::exists(d / "mil" / "cv_summary.json")) {
    g.kind = "mil cv";
    readFolds(g, d / "mil" / "cv_summary.json", d / "mil", {"oof_accuracy", "oof_auc"}, readMilSummary);
  } else if (fs::exists(d / "mil" / "summary.json")) {
    g.kind = "mil";
    CompareRun run{baseName(dir), (d / "mil").string(), {}, {}, {}};
    readLog(run, g);
    readMilSummary(run);
    g.runs.push_back(std::move(run));
  } else if (fs::exists(d / "metrics.jsonl")) {
    g.kind = "train";
    CompareRun run{baseName(dir), dir, {}, {}, {}};
    readLog(run, g);
    readSlideMetrics(run);
    g.runs.push_back(std::move(run));
  } else {
    throw wsi::DataError(dir + ": not a run folder of slidetrain train, cv or mil: it has no metrics.jsonl, "
                         "cv_summary.json, mil/summary.json or mil/cv_summary.json (cv writes cv_summary.json "
                         "when its last fold is done)");
  }
  return g;
}

std::vector<CompareGroup> readComparison(const std::vector<CompareInput>& inputs) {
  std::vector<CompareGroup> groups;
  for (const CompareInput& in : inputs) {
    CompareGroup g = readCompareGroup(in.label, in.dir);
    auto same = std::find_if(groups.begin(), groups.end(), [&](const CompareGroup& o) { return o.label == in.label; });
    if (same == groups.end()) {
      groups.push_back(std::move(g));
      continue;
    }
    // Runs of several folders under one label: fold names get their folder's name.
    auto prefix = [](CompareGroup& grp, const std::string& dir) {
      if (grp.kind == "cv" || grp.kind == "mil cv")
        for (CompareRun& r : grp.runs)
          if (r.name.rfind("fold_", 0) == 0) r.name = baseName(dir) + "/" + r.name;
    };
    if (same->dirs.size() == 1) prefix(*same, same->dirs[0]);
    prefix(g, in.dir);
    if (same->kind != g.kind && ("+" + same->kind + "+").find("+" + g.kind + "+") == std::string::npos)
      same->kind += "+" + g.kind;
    same->dirs.push_back(in.dir);
    for (CompareRun& r : g.runs) same->runs.push_back(std::move(r));
    for (std::string& n : g.notes) same->notes.push_back(std::move(n));
  }
  return groups;
}

MetricSummary summarizeMetric(const CompareGroup& group, const std::string& metric) {
  std::vector<double> values;
  for (const CompareRun& r : group.runs) values.push_back(r.metric(metric));
  const auto [mean, sd] = meanSd(values);
  const size_t n = static_cast<size_t>(
      std::count_if(values.begin(), values.end(), [](double v) { return std::isfinite(v); }));
  return {mean, sd, n};
}

std::vector<std::string> presentMetrics(const std::vector<CompareGroup>& groups) {
  std::vector<std::string> out;
  for (const std::string& m : compareMetricNames()) {
    bool any = false;
    for (const CompareGroup& g : groups) any = any || summarizeMetric(g, m).n > 0;
    if (any) out.push_back(m);
  }
  return out;
}

std::string defaultCompareMetric(const std::vector<CompareGroup>& groups) {
  const std::vector<std::string> preferred{"patch_auc", "oof_auc", "val_auc", "val_accuracy", "predict_auc",
                                           "predict_accuracy", "train_accuracy"};
  for (const std::string& m : preferred)
    if (!groups.empty() && std::all_of(groups.begin(), groups.end(),
                                       [&](const CompareGroup& g) { return summarizeMetric(g, m).n > 0; }))
      return m;
  const std::vector<std::string> present = presentMetrics(groups);
  for (const std::string& m : preferred)
    if (std::find(present.begin(), present.end(), m) != present.end()) return m;
  return present.empty() ? "" : present.front();
}

void checkCompareMetric(const std::vector<CompareGroup>& groups, const std::string& metric) {
  const std::vector<std::string>& known = compareMetricNames();
  std::string list;
  for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
  if (std::find(known.begin(), known.end(), metric) == known.end())
    throw UsageError("--metric " + metric + ": unknown metric; one of " + list);
  const std::vector<std::string> present = presentMetrics(groups);
  if (std::find(present.begin(), present.end(), metric) == present.end()) {
    std::string have;
    for (const std::string& p : present) have += (have.empty() ? "" : ", ") + p;
    throw UsageError("--metric " + metric + ": no run has it; these runs have " + have);
  }
}

std::string compareCsv(const std::vector<CompareGroup>& groups) {
  const std::vector<std::string> metrics = presentMetrics(groups);
  std::ostringstream o;
  o << "group,run,kind,n,dir";
  for (const std::string& m : metrics) o << "," << m;
  o << "\n";
  for (const CompareGroup& g : groups) {
    for (const CompareRun& r : g.runs) {
      o << csvField(g.label) << "," << csvField(r.name) << "," << csvField(g.kind) << ",1," << csvField(r.dir);
      for (const std::string& m : metrics) o << "," << csvNumber(r.metric(m));
      o << "\n";
    }
    for (const char* stat : {"mean", "sd"}) {
      o << csvField(g.label) << "," << stat << "," << csvField(g.kind) << "," << g.runs.size() << ",";
      for (const std::string& m : metrics) {
        const MetricSummary s = summarizeMetric(g, m);
        o << "," << csvNumber(stat[0] == 'm' ? s.mean : s.sd);
      }
      o << "\n";
    }
  }
  return o.str();
}

}  // namespace slidetrain
