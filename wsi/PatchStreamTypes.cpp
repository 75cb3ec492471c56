// PatchStreamTypes: the default worker count and the options' validation.
#include "wsi/PatchStreamTypes.h"

#include <sched.h>

#include <algorithm>
#include <stdexcept>
#include <thread>

namespace slidetrain::wsi {

int defaultStreamWorkers() {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(n, 1, 64);
}

void StreamOptions::validate() const {
  if (workers < 1) throw std::invalid_argument("data.workers: must be >= 1");
  if (prefetchBatches < 1) throw std::invalid_argument("data.prefetch_batches: must be >= 1");
  if (slideCache < 1) throw std::invalid_argument("data.slide_cache: must be >= 1");
  if (tileCacheBytes < 0) throw std::invalid_argument("data.tile_cache_mb: must be >= 0");
  if (groupWindowBatches < 0) throw std::invalid_argument("data.group_window: must be >= 0");
}

}  // namespace slidetrain::wsi
