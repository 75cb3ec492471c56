#include "src/train/EarlyStopping.h"

#include <cmath>

namespace slidetrain {
namespace {

std::string naturalMode(const std::string& metric) {
  const std::string suffix = "_loss";
  const bool loss = metric.size() >= suffix.size() &&
                    metric.compare(metric.size() - suffix.size(), suffix.size(), suffix) == 0;
  return loss ? "min" : "max";
}

}  // namespace

Monitor resolveMonitor(const std::string& metric, const std::string& mode, bool haveValidation) {
  Monitor m{metric, mode, ""};
  const bool fellBack = !haveValidation && metric.rfind("val_", 0) == 0;
  if (fellBack) m.metric = metric == "val_accuracy" ? "train_accuracy" : "train_loss";
  if (mode == "auto") {
    m.mode = naturalMode(m.metric);
  } else if (fellBack && mode != naturalMode(m.metric)) {
    m.mode = naturalMode(m.metric);
    m.note = "train.early_stopping.mode: " + mode + " was given for " + metric +
             ", but without a validation split the run monitors " + m.metric + "; using " +
             m.mode + " (add a val split to monitor " + metric + ")";
  }
  if (fellBack && m.note.empty())
    m.note = "train.early_stopping.metric: " + metric + " needs a validation split; monitoring " +
             m.metric + " (" + m.mode + ") instead";
  return m;
}

bool isImprovement(const std::string& mode, double value, double best, double minDelta) {
  if (!std::isfinite(value)) return false;
  if (!std::isfinite(best)) return true;
  return mode == "min" ? value < best - minDelta : value > best + minDelta;
}

}  // namespace slidetrain
