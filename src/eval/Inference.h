#pragma once
// Sharded inference: each rank predicts a contiguous share of a split's patches and the class
// probabilities are all-gathered, so every rank ends with all of them in sample order.
#include <array>
#include <vector>

#include "distributed/Comm.h"
#include "src/data/BatchTensor.h"
#include "src/models/ModelZoo.h"
#include "src/data/SplitData.h"
#include "src/config/Settings.h"
#include "wsi/Augment.h"

namespace slidetrain {

struct InferenceOptions {
  int batchSize = 128;
  wsi::StreamOptions stream;  ///< readers, prefetch, direct reads, bad-patch policy
  Normalization norm;
  /// Stain normalisation applied to every patch as in training (augment.stain_norm); the random
  /// augmentations never apply at inference.
  wsi::StainNorm stainNorm = wsi::StainNorm::None;
  std::array<double, 3> reinhardMean{}, reinhardStd{};
};

/// predict.batch_size, the stream, the input normalisation and augment.* stain normalisation.
InferenceOptions inferenceOptions(const PredictSettings& predict, const wsi::StreamOptions& stream,
                                  const Normalization& norm, const wsi::AugmentOptions& augment);

/// Returns [samples, classes] probabilities on the CPU (rows of skipped patches are NaN).
/// Collective: one allGather on the device plane (`device`: the predictions stay on the model's
/// device until gathered), in the same order on every rank.
at::Tensor predictProbabilities(Model& model, const SplitData& data, int numClasses,
                                const InferenceOptions& options, dist::Comm& device);

}  // namespace slidetrain
