// TrainingLog: see TrainingLog.h.
#include "src/eval/TrainingLog.h"

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <limits>

#include "wsi/Json.h"

namespace slidetrain {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The number at `key` of `v`, or of its member object `group` when given; NaN when absent or null.
double number(const wsi::JsonValue& v, const std::string& key, const std::string& group = "") {
  const wsi::JsonValue* o = group.empty() ? &v : v.find(group);
  const wsi::JsonValue* n = o ? o->find(key) : nullptr;
  return n && n->isNumber() ? n->number : kNaN;
}

/// `a` unless it is NaN, else `b`: train's field names, else those of slidetrain mil's log.
double either(double a, double b) { return std::isnan(a) ? b : a; }

/// The arrays `names` of member object `group` of a line, as numbers (NaN for null), when all
/// are arrays of one length; none when absent or malformed.
std::vector<std::vector<double>> columnsOf(const wsi::JsonValue& v, const char* group,
                                           std::initializer_list<const char*> names) {
  const wsi::JsonValue* g = v.find(group);
  if (!g || !g->isObject()) return {};
  std::vector<std::vector<double>> out;
  for (const char* name : names) {
    const wsi::JsonValue* c = g->find(name);
    if (!c || !c->isArray() || (!out.empty() && c->array.size() != out[0].size())) return {};
    out.emplace_back();
    for (const wsi::JsonValue& x : c->array) out.back().push_back(x.isNumber() ? x.number : kNaN);
  }
  return out;
}

/// The "steps" columns of a line (step, loss, accuracy, lr).
std::vector<StepRecord> stepsOf(const wsi::JsonValue& v, int64_t epoch) {
  const auto c = columnsOf(v, "steps", {"step", "loss", "accuracy", "lr"});
  std::vector<StepRecord> out;
  for (size_t i = 0; !c.empty() && i < c[0].size(); ++i)
    out.push_back({static_cast<int64_t>(c[0][i]), epoch, c[1][i], c[2][i], c[3][i]});
  return out;
}

/// The "ranks" columns of a line (patches_per_s, data_wait_pct, gpu_busy_pct).
std::vector<RankRecord> ranksOf(const wsi::JsonValue& v) {
  const auto c = columnsOf(v, "ranks", {"patches_per_s", "data_wait_pct", "gpu_busy_pct"});
  std::vector<RankRecord> out;
  for (size_t i = 0; !c.empty() && i < c[0].size(); ++i) out.push_back({c[0][i], c[1][i], c[2][i]});
  return out;
}

}  // namespace

EpochRecord::EpochRecord()
    : loss(kNaN), accuracy(kNaN), lr(kNaN), seconds(kNaN), patchesPerS(kNaN), dataWaitPct(kNaN), gpuBusyPct(kNaN),
      valLoss(kNaN), valAccuracy(kNaN), valAuc(kNaN), valSlideAccuracy(kNaN) {}

TrainingLog readTrainingLog(const std::string& path) {
  TrainingLog log;
  std::ifstream in(path);
  if (!in) return log;
  log.found = true;
  std::string line;
  size_t lineNo = 0, restartLine = 0;
  while (std::getline(in, line)) {
    ++lineNo;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    wsi::JsonValue v;
    try {
      v = wsi::parseJson(line, path);
    } catch (const std::exception& e) {
      log.notes.push_back("metrics.jsonl line " + std::to_string(lineNo) + " left out: " + e.what());
      continue;
    }
    const double epoch = number(v, "epoch");
    if (!v.isObject() || std::isnan(epoch)) {
      log.notes.push_back("metrics.jsonl line " + std::to_string(lineNo) + " left out: no \"epoch\"");
      continue;
    }
    EpochRecord r;
    r.epoch = static_cast<int64_t>(epoch);
    const double step = number(v, "step");
    r.step = std::isnan(step) ? 0 : static_cast<int64_t>(step);
    r.loss = either(number(v, "loss"), number(v, "train_loss"));
    r.accuracy = either(number(v, "accuracy", "train"), number(v, "train_acc"));
    r.lr = number(v, "lr");
    r.seconds = number(v, "seconds");
    r.patchesPerS = number(v, "patches_per_s");
    r.dataWaitPct = number(v, "data_wait_pct");
    r.gpuBusyPct = number(v, "gpu_busy_pct");
    r.ranks = ranksOf(v);
    r.valLoss = number(v, "val_loss");
    r.valAccuracy = either(number(v, "accuracy", "val"), number(v, "val_acc"));
    r.valAuc = either(number(v, "roc_auc", "val"), number(v, "val_auc"));
    r.valSlideAccuracy = number(v, "accuracy", "val_slide");
    const double world = number(v, "world_size");
    r.worldSize = std::isnan(world) ? 0 : static_cast<int64_t>(world);
    if (const wsi::JsonValue* d = v.find("device"); d && d->isString()) r.device = d->string;
    if (!log.epochs.empty() && r.epoch <= log.epochs.back().epoch && r.step <= log.epochs.back().step) {
      log.epochs.clear();  // train started over in this run_dir: keep the last run's lines
      log.steps.clear();
      restartLine = lineNo;
    } else if (!log.epochs.empty() && r.epoch == log.epochs.back().epoch) {
      log.epochs.pop_back();  // an epoch cut by train.max_steps, resumed: its later line
    }
    log.epochs.push_back(r);
    for (const StepRecord& sr : stepsOf(v, r.epoch)) log.steps.push_back(sr);
  }
  if (restartLine > 0)
    log.notes.push_back("metrics.jsonl holds lines of an earlier training run in this run_dir (its epochs "
                        "start over at line " + std::to_string(restartLine) + "): the charts show the last run");
  return log;
}

}  // namespace slidetrain
