#include "src/train/EpochPlan.h"

#include <algorithm>
#include <string>

#include "distributed/Sampler.h"

namespace slidetrain {

EpochPlan EpochPlan::make(int64_t epochSize, const TrainSettings& train, bool fullBatch, int world) {
  EpochPlan p;
  p.epochSize = epochSize;
  p.fullBatch = fullBatch;
  p.microBatch = train.batchSize;
  if (p.microBatch % world != 0)
    throw ConfigError("train.batch_size: " + std::to_string(p.microBatch) +
                      " is not divisible by the world size " + std::to_string(world));
  // Full-batch GD covers every sample (the trailing partial micro-batch included); mini-batch
  // training drops it so every step has the same global batch.
  p.microPerEpoch = dist::numGlobalBatches(epochSize, p.microBatch, /*dropLast=*/!fullBatch);
  if (p.microPerEpoch == 0)
    throw ConfigError("train.batch_size: " + std::to_string(p.microBatch) + " exceeds the " +
                      std::to_string(epochSize) + " training patches of an epoch");
  p.groupSize = fullBatch ? p.microPerEpoch : train.accumulationSteps;
  p.stepsPerEpoch = (p.microPerEpoch + p.groupSize - 1) / p.groupSize;
  p.totalSteps = train.maxSteps > 0 ? train.maxSteps : train.epochs * p.stepsPerEpoch;
  p.epochs = (p.totalSteps + p.stepsPerEpoch - 1) / p.stepsPerEpoch;
  return p;
}

std::pair<int64_t, int64_t> EpochPlan::groupSpan(int64_t g, int64_t orderSize) const {
  const int64_t begin = g * groupSize * microBatch;
  const int64_t end = std::min<int64_t>(std::min(microPerEpoch, (g + 1) * groupSize) * microBatch, orderSize);
  return {begin, end};
}

}  // namespace slidetrain
