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

#include "wsi/PixelBuffer.h"
#include "wsi/Slide.h"

namespace slidetrain::wsi {

class TiffTileReader;
class TileCache;

/// One patch to read: top-left (x, y) in level-0 coordinates, `size` px at `level`.
struct PatchRequest {
  int32_t slide = 0;  ///< index into the stream's slide list
  int64_t x = 0, y = 0;
  int32_t level = 0;
  int32_t size = 0;      ///< output side in pixels
  int32_t readSize = 0;  ///< side read at `level` before resampling to `size`; 0 = size
  int32_t label = -1;
  int64_t id = -1;  ///< global sample index (seeds augmentation; identifies the patch)
};

struct Batch {
  int64_t index = 0;  ///< position in the epoch's batch list
  int size = 0;       ///< patch side
  PixelBuffer pixels;  ///< count() * size * size * 3, NHWC (StreamOptions::pixelAllocator's memory)
  std::vector<int32_t> labels;
  std::vector<int64_t> ids;
  std::vector<PatchRequest> requests;
  size_t count() const { return labels.size(); }
};

/// Worker threads to use by default: the cores this process may run on.
int defaultStreamWorkers();

struct StreamOptions {
  int workers = defaultStreamWorkers();
  int prefetchBatches = 4;
  int slideCache = 32;
  bool skipBadPatches = false;  ///< on_bad_slide: skip
  /// Read tiled JPEG TIFF/SVS levels with TiffTileReader (pixels identical to OpenSlide's).
  bool directReads = true;
  /// Decoded-tile cache shared by all slides of the stream (bytes).
  int64_t tileCacheBytes = int64_t(64) << 20;
  /// Batches whose patches are read together in tile order; 0 = max(1, prefetchBatches / 2).
  int groupWindowBatches = 0;
  SlideOptions slideOptions;
  /// Memory for batch pixels (e.g. pinned host memory for GPU copies); empty = the heap.
  PixelAllocator pixelAllocator;
  void validate() const;
};

struct StreamStats {
  int64_t patches = 0;
  int64_t bytes = 0;        ///< output pixel bytes
  double readSeconds = 0;   ///< summed over workers (read + resample + transform)
  double waitSeconds = 0;   ///< consumer time blocked in next()
  int64_t skipped = 0;
  std::vector<std::string> skippedReasons;  ///< first few reasons

  // ---- telemetry ----
  double elapsedSeconds = 0;   ///< wall time of the passes so far (start() to last delivery)
  int64_t directPatches = 0;   ///< patches read by TiffTileReader
  int64_t fallbackPatches = 0; ///< patches read through Slide::readRegion
  int64_t tilesDecoded = 0;    ///< JPEG tiles decoded by the direct path
  int64_t tileCacheHits = 0;
  int64_t decodedBytes = 0;    ///< decoded tile RGB bytes + fallback region RGB bytes
  int queued = 0;              ///< ready batches waiting for the consumer, now
  int queueCapacity = 0;       ///< prefetchBatches
  double meanQueueFill = 0;    ///< mean of queued / queueCapacity seen by next() calls
  int64_t bufferedBytes = 0;     ///< pixel bytes of admitted batches, now
  int64_t peakBufferedBytes = 0; ///< most pixel bytes of admitted batches at once

  double patchesPerSecond() const { return elapsedSeconds > 0 ? patches / elapsedSeconds : 0; }
  double decodedMBPerSecond() const {
    return elapsedSeconds > 0 ? decodedBytes / 1e6 / elapsedSeconds : 0;
  }
  double queueFill() const { return queueCapacity > 0 ? double(queued) / queueCapacity : 0; }
  /// Share of the consumer's time (its step time) spent waiting for data.
  double waitShare() const { return elapsedSeconds > 0 ? waitSeconds / elapsedSeconds : 0; }
};

/// Called in a worker on each patch after reading (augmentation); must be thread-safe.
using PatchTransform = std::function<void(RgbImage&, const PatchRequest&)>;

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
  struct Handle {
    std::shared_ptr<Slide> slide;
    std::shared_ptr<TiffTileReader> reader;  ///< null when the direct path does not apply
  };
  struct Slot;  // an admitted batch being filled
  struct Task {
    int64_t batch;
    int pos;
  };

  Handle handle(int32_t index);
  void workerLoop();
  void readPatch(const PatchRequest& r, RgbImage& img, RgbImage& scratch, bool* direct);
  void admitLocked();
  void finishLocked(int64_t index, Slot& slot);
  void stopWorkers();
  void closePassLocked();

  std::vector<std::string> paths_;
  std::vector<SlideOptions> slideOptions_;
  StreamOptions options_;
  PatchTransform transform_;
  std::shared_ptr<TileCache> tileCache_;

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

  std::mutex cacheMu_;
  std::list<std::pair<int32_t, std::shared_future<Handle>>> cache_;  // LRU, front = newest
};

}  // namespace slidetrain::wsi
