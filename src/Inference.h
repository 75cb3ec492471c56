#pragma once
// Sharded inference: each rank predicts a contiguous share of a split's patches and the class
// probabilities are all-gathered, so every rank ends with all of them in sample order.
#include <vector>

#include "distributed/Comm.h"
#include "src/BatchTensor.h"
#include "src/ModelZoo.h"
#include "src/SplitData.h"

namespace slidetrain {

struct InferenceOptions {
  int batchSize = 128;
  int workers = 1;
  int prefetchBatches = 4;
  int slideCache = 32;
  bool skipBadPatches = true;
  Normalization norm;
};

/// Returns [samples, classes] probabilities (rows of skipped patches are NaN).
/// Collective: one allGather, in the same order on every rank.
at::Tensor predictProbabilities(Model& model, const SplitData& data, int numClasses,
                                const InferenceOptions& options, dist::Comm& comm);

}  // namespace slidetrain
