#pragma once
// PatchReader: how PatchStream's workers read one patch, and in which order a window of patches
// is read. Internal to PatchStream (its threads, queue and batches live in PatchStream.cpp).
//  * Slides are opened through a bounded LRU cache of handles shared by the workers: a slide
//    being opened by one worker is waited for, not opened twice; a failed open is forgotten, so
//    the next patch of that slide retries.
//  * Tiled JPEG TIFF/SVS levels are read with TiffTileReader through one decoded-tile cache
//    shared by all slides (same pixels as OpenSlide); every other read goes through
//    Slide::readRegion. Then readSize -> size resampling and the stream's transform.
//  * A slide whose SlideOptions::imageFile is set is a patch image (patch folders): decoded
//    whole, resized to the patch size, transformed; no handle is cached for it.
//  * tileReadOrder: a window's patches sorted so patches sharing a tile are read together.
#include <array>
#include <cstdint>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "wsi/PatchStreamTypes.h"
#include "wsi/Slide.h"

namespace slidetrain::wsi {

class TiffTileReader;
class TileCache;

class PatchReader {
 public:
  /// Called by the thread that opened `slide` for direct reads, with its level-0 tile size.
  using TileSizeSeen = std::function<void(int32_t slide, std::array<int, 2> tileSize)>;

  /// `perSlideOptions` is empty (options.slideOptions for every slide) or one per path. Uses
  /// options.slideCache, directReads and tileCacheBytes.
  PatchReader(std::vector<std::string> slidePaths, std::vector<SlideOptions> perSlideOptions,
              const StreamOptions& options, PatchTransform transform, TileSizeSeen onTileSize);

  /// Reads `r` into `img` (r.size square, transformed); `scratch` holds a read that is
  /// resampled. `*direct` says whether TiffTileReader served it. Thread-safe.
  void read(const PatchRequest& r, RgbImage& img, RgbImage& scratch, bool* direct);
  /// Path of `slide` for messages (slide 0's when the index is out of range).
  const std::string& path(int32_t slide) const;
  const TileCache& tileCache() const { return *tileCache_; }

 private:
  struct Handle {
    std::shared_ptr<Slide> slide;
    std::shared_ptr<TiffTileReader> reader;  ///< null when the direct path does not apply
  };
  Handle handle(int32_t index);

  std::vector<std::string> paths_;
  std::vector<SlideOptions> slideOptions_;
  SlideOptions defaultSlideOptions_;
  int slideCache_;
  bool directReads_;
  PatchTransform transform_;
  TileSizeSeen onTileSize_;
  std::shared_ptr<TileCache> tileCache_;

  std::mutex cacheMu_;
  std::list<std::pair<int32_t, std::shared_future<Handle>>> cache_;  // LRU, front = newest
};

/// Read order of the patches of batches [begin, end) as (batch, position) pairs: sorted by
/// (slide, level, tile row, tile column) with level-0 tile sizes from `tileSizes` ({0, 0} until
/// a slide is opened: 256 stands in), then cut into one contiguous run per worker and
/// interleaved round-robin. Workers pop in turn, so each walks its own run of tiles and the
/// workers meet only at run borders instead of waiting on each other's decode of shared tiles.
std::vector<std::pair<int64_t, int>> tileReadOrder(
    const std::vector<std::vector<PatchRequest>>& batches, int64_t begin, int64_t end,
    const std::vector<std::array<int, 2>>& tileSizes, int workers);

}  // namespace slidetrain::wsi
