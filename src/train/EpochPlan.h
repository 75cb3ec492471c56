#pragma once
// The geometry of training: global micro-batches per epoch, micro-batches per optimizer step
// (gradient accumulation, or all of them for full-batch gd), optimizer steps per epoch and in
// total, epochs. A pure function of the epoch size, train.* and the world size.
#include <cstdint>
#include <utility>

#include "src/config/Settings.h"

namespace slidetrain {

struct EpochPlan {
  int64_t microBatch = 0;     ///< global micro-batch (train.batch_size)
  int64_t groupSize = 1;      ///< micro-batches per optimizer step
  bool fullBatch = false;     ///< optimizer gd: one step per epoch over every sample
  int64_t epochSize = 0;      ///< samples per epoch (after cap/balance)
  int64_t microPerEpoch = 0;
  int64_t stepsPerEpoch = 0, totalSteps = 0, epochs = 0;

  /// Throws ConfigError naming train.batch_size when the world size does not divide it or it
  /// exceeds the epoch. train.max_steps > 0 overrides train.epochs (the last epoch may stop
  /// mid-way).
  static EpochPlan make(int64_t epochSize, const TrainSettings& train, bool fullBatch, int world);

  /// Samples of one optimizer step over all ranks (the linear scaling rule's batch).
  int64_t effectiveBatch() const { return fullBatch ? epochSize : microBatch * groupSize; }
  /// Optimizer step (group) of micro-batch m of an epoch, and whether m ends it.
  int64_t groupOf(int64_t m) const { return m / groupSize; }
  bool endsGroup(int64_t m) const { return m % groupSize == groupSize - 1 || m == microPerEpoch - 1; }
  /// Positions [begin, end) in an epoch order of `orderSize` samples that group g covers.
  std::pair<int64_t, int64_t> groupSpan(int64_t g, int64_t orderSize) const;
};

}  // namespace slidetrain
