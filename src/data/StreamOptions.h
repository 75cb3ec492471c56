#pragma once
// The patch stream's options from data.* (and on_bad_slide), and the model-input normalisation
// (data.mean, data.std).
#include "src/config/Settings.h"
#include "src/data/BatchTensor.h"
#include "wsi/PatchStream.h"

namespace slidetrain {

/// `workers`: the stream workers of the rank's ThreadPlan (src/runtime/Runtime.h), used when
/// data.workers is 0. Throws ConfigError ("data: ...") on inconsistent values.
wsi::StreamOptions streamOptions(const DataSettings& data, bool skipBadPatches, int workers);

/// streamOptions() for this rank: the workers of its ThreadPlan (src/runtime/Runtime.h) for a
/// model on CUDA (`cudaModel`) or the CPU.
wsi::StreamOptions rankStreamOptions(const Settings& settings, bool cudaModel);

Normalization normalization(const DataSettings& data);

}  // namespace slidetrain
