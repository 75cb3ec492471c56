#include "src/data/StreamOptions.h"

#include <stdexcept>

#include "distributed/MpiComm.h"
#include "src/runtime/Runtime.h"

namespace slidetrain {

wsi::StreamOptions streamOptions(const DataSettings& data, bool skipBadPatches, int workers) {
  wsi::StreamOptions so;
  so.workers = data.workers > 0 ? data.workers : workers;
  so.prefetchBatches = data.prefetchBatches;
  so.slideCache = data.slideCache;
  so.skipBadPatches = skipBadPatches;
  so.directReads = data.directReads;
  so.tileCacheBytes = static_cast<int64_t>(data.tileCacheMb * (1 << 20));
  so.groupWindowBatches = data.groupWindowBatches;
  try {
    so.validate();
  } catch (const std::exception& e) {
    throw ConfigError(std::string("data: ") + e.what());
  }
  return so;
}

wsi::StreamOptions rankStreamOptions(const Settings& s, bool cudaModel) {
  const ThreadPlan plan = threadPlanFor(s.train, s.data, cudaModel, dist::localSize());
  return streamOptions(s.data, s.run.skipBadSlides, plan.workers);
}

Normalization normalization(const DataSettings& data) {
  Normalization n;
  n.mean = data.mean;
  n.std = data.std;
  return n;
}

}  // namespace slidetrain
