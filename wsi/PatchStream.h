#pragma once
// PatchStream: reads batches of patches with a pool of worker threads, a bounded cache of open
// slide handles and a bounded prefetch queue (memory never grows with the cohort). Batches come
// out in the order they were given. A worker's exception reaches the consumer in next(), naming
// the slide and the patch; with skipBadPatches the patch is dropped and the batch shrinks.
//
// Work is handed out per patch, so one batch is built by several threads. Batches are admitted
// in windows of `groupWindowBatches`; a window's patches are read sorted by (slide, level, tile
// row, tile column) so patches that share compressed tiles are read together and each tile is
// decoded once (the decoded-tile cache is shared by the workers), while every batch is still
// delivered with its patches in the given order. Tiled JPEG TIFF/SVS levels are read directly
// (TiffTileReader: same pixels as OpenSlide); every other read goes through Slide::readRegion.
// How one patch is read, and the tile order, are in PatchReader.h; the requests, batches,
// options and statistics in PatchStreamTypes.h.
//
// Memory bound (pixel buffers): at most prefetchBatches admitted batches exist at once, so
//   bytes <= prefetchBatches * maxBatchPatches * size^2 * 3      (admitted + ready batches)
//          + tileCacheBytes                                       (decoded tiles, all slides)
//          + workers * readSize^2 * 7                             (per-worker scratch)
//          + slideCache * (32 MB OpenSlide cache + tile index)    (open handles)
// plus the one batch the consumer holds. Nothing in it depends on the number of slides or
// patches in the cohort. See docs/stream.md.
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "wsi/PatchStreamTypes.h"
#include "wsi/PixelBuffer.h"
#include "wsi/Slide.h"

namespace slidetrain::wsi {

class PatchReader;

class PatchStream {
 public:
  PatchStream(std::vector<std::string> slidePaths, StreamOptions options,
              PatchTransform transform = {},
              std::vector<SlideOptions> perSlideOptions = {});
  ~PatchStream();
  PatchStream(const PatchStream&) = delete;
  PatchStream& operator=(const PatchStream&) = delete;

  /// Starts a new pass over `batches` (stops any pass in progress).
  void start(std::vector<std::vector<PatchRequest>> batches);
  /// Next batch in order, or nullopt at the end of the pass. Rethrows worker errors.
  std::optional<Batch> next();
  StreamStats stats() const;

 private:
  struct Slot;  // an admitted batch being filled
  struct Task {
    int64_t batch;
    int pos;
  };

  void workerLoop();
  void admitLocked();
  void finishLocked(int64_t index, Slot& slot);
  void stopWorkers();
  void closePassLocked();

  StreamOptions options_;
  std::unique_ptr<PatchReader> reader_;  // slide handles, patch reads, tile cache

  mutable std::mutex mu_;
  std::condition_variable workCv_, readyCv_;
  std::vector<std::vector<PatchRequest>> batches_;
  int64_t admitted_ = 0, nextToDeliver_ = 0;
  std::map<int64_t, std::unique_ptr<Slot>> slots_;
  std::deque<Task> tasks_;
  std::map<int64_t, Batch> ready_;
  std::map<int64_t, std::exception_ptr> errors_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  StreamStats stats_;
  std::vector<std::array<int, 2>> tileHint_;  ///< per slide: level-0 tile size once known
  bool passOpen_ = false;
  std::chrono::steady_clock::time_point passStart_;
  double closedSeconds_ = 0, fillSum_ = 0;
  int64_t fillSamples_ = 0;
};

}  // namespace slidetrain::wsi
