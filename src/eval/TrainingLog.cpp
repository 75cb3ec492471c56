// TrainingLog: see TrainingLog.h.
#include "src/eval/TrainingLog.h"

#include <cmath>
#include <fstream>
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

/// The "steps" columns of a line (step, loss, accuracy, lr: arrays of one length); none when
/// absent or malformed.
std::vector<StepRecord> stepsOf(const wsi::JsonValue& v, int64_t epoch) {
  const wsi::JsonValue* s = v.find("steps");
  if (!s || !s->isObject()) return {};
  const wsi::JsonValue *step = s->find("step"), *loss = s->find("loss"), *acc = s->find("accuracy"), *lr = s->find("lr");
  if (!step || !loss || !acc || !lr || !step->isArray()) return {};
  const size_t n = step->array.size();
  for (const wsi::JsonValue* c : {loss, acc, lr})
    if (!c->isArray() || c->array.size() != n) return {};
  std::vector<StepRecord> out;
  for (size_t i = 0; i < n; ++i) {
    auto value = [&](const wsi::JsonValue* c) { return c->array[i].isNumber() ? c->array[i].number : kNaN; };
    out.push_back({static_cast<int64_t>(value(step)), epoch, value(loss), value(acc), value(lr)});
  }
  return out;
}

}  // namespace

EpochRecord::EpochRecord()
    : loss(kNaN), accuracy(kNaN), lr(kNaN), seconds(kNaN), patchesPerS(kNaN), dataWaitPct(kNaN),
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
