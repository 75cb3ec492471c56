#pragma once
// The monitored metric of a training run (train.early_stopping.*): which metric, which
// direction, and the improvement / patience rules. Pure functions, so the trainer's decisions can
// be tested on scripted metric sequences.
#include <cstdint>
#include <string>

namespace slidetrain {

struct Monitor {
  std::string metric;  ///< after the fallback (val_* -> train_* without a validation split)
  std::string mode;    ///< "min" or "max", resolved after the fallback
  std::string note;    ///< non-empty when the configured metric or mode was replaced (say it)
};

/// Resolves train.early_stopping.metric / .mode. Without a validation split a val_* metric falls
/// back to train_accuracy (for val_accuracy) or train_loss. The direction is resolved AFTER the
/// fallback: "auto" is min for *_loss and max otherwise; an explicit mode given for a val_* metric
/// that fell back is replaced by the fallback metric's own direction (a mode meant for val_auc
/// must not make the run keep the checkpoint with the highest training loss), and `note` says so.
Monitor resolveMonitor(const std::string& metric, const std::string& mode, bool haveValidation);

/// Whether `value` improves on `best` (NaN best: the first finite value always does).
bool isImprovement(const std::string& mode, double value, double best, double minDelta);

/// Early stop after `patience` epochs in a row without improvement (0: never).
inline bool shouldStop(int64_t patience, int64_t badEpochs) {
  return patience > 0 && badEpochs >= patience;
}

}  // namespace slidetrain
