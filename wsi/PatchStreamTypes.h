#pragma once
// What goes into and comes out of a PatchStream: patch requests, batches, the stream's options
// and its statistics, and the per-patch transform. Kept apart from the stream's threads so code
// that only builds requests or options needs none of them (PatchStream.h includes this).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "wsi/PixelBuffer.h"
#include "wsi/Slide.h"

namespace slidetrain::wsi {

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

}  // namespace slidetrain::wsi
