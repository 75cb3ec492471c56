#pragma once
// TiffTileReader: reads tiled JPEG TIFF/SVS levels directly (libtiff for the directory, tile
// offsets and JPEGTables; libjpeg-turbo to decode), bypassing OpenSlide's 32 MB per-handle cache
// and its premultiplied-ARGB round trip. Pixels are identical to Slide::readRegion: tiles are
// decoded exactly as OpenSlide 3.4.1 decodes them (same libjpeg, default DCT and upsampling,
// colour space taken from the TIFF photometric tag, warnings treated as errors), edge tiles are
// clipped to the image and everything outside the image is the slide's background colour.
//
// Only levels that OpenSlide itself reads through its direct-JPEG path are handled (vendor
// "aperio" or "generic-tiff"; COMPRESSION_JPEG, contiguous, 8-bit, 3 samples, RGB or YCbCr),
// and only reads whose level coordinates are integral; tryReadRegion() returns false otherwise
// (and for Aperio's missing tiles, which OpenSlide renders from a coarser level), and the caller
// then uses Slide::readRegion. Thread-safe: tiles are read with pread, decoded without locks.
#include <array>
#include <atomic>
#include <cstdint>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "wsi/Slide.h"

namespace slidetrain::wsi {

/// A decoded tile: tileWidth x tileHeight RGB, interleaved.
struct DecodedTile {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

/// LRU cache of decoded tiles, bounded in bytes, shared by threads (and optionally by readers).
/// Concurrent requests for the same tile wait for one decode instead of decoding twice.
class TileCache {
 public:
  explicit TileCache(size_t maxBytes) : maxBytes_(maxBytes) {}
  using TilePtr = std::shared_ptr<const DecodedTile>;
  struct Key {
    uint64_t reader;
    int32_t level;
    int64_t tile;
    bool operator==(const Key& o) const {
      return reader == o.reader && level == o.level && tile == o.tile;
    }
  };
  /// Returns the cached tile or runs `decode` (outside the lock) and caches its result.
  /// `*decoded` is set to true when this call decoded it. Exceptions propagate to every waiter.
  template <class Decode>
  TilePtr get(const Key& key, Decode&& decode, bool* decoded);
  size_t bytes() const;
  size_t maxBytes() const { return maxBytes_; }
  /// Decodes run through this cache (misses), hits, and RGB bytes decoded, since construction.
  struct Counters {
    int64_t decodes = 0, hits = 0, decodedBytes = 0;
  };
  Counters counters() const { return {decodes_.load(), hits_.load(), decodedBytes_.load()}; }

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<uint64_t>()(k.reader * 0x9E3779B97F4A7C15ull ^
                                   (uint64_t(k.level) << 48) ^ uint64_t(k.tile));
    }
  };
  struct Entry {
    std::shared_future<TilePtr> tile;
    size_t bytes = 0;  ///< 0 while decoding
    std::list<Key>::iterator lru;
  };
  void evictLocked();

  const size_t maxBytes_;
  std::atomic<int64_t> decodes_{0}, hits_{0}, decodedBytes_{0};
  mutable std::mutex mu_;
  size_t bytes_ = 0;
  std::list<Key> lru_;  // front = most recent
  std::unordered_map<Key, Entry, KeyHash> map_;
};

class TiffTileReader {
 public:
  struct Stats {
    int64_t tilesDecoded = 0;
    int64_t cacheHits = 0;
    int64_t decodedBytes = 0;    ///< RGB bytes produced by decoding
    int64_t compressedBytes = 0; ///< JPEG bytes read from the file
  };

  /// Opens the direct path for `slide` (already opened). Returns nullptr with *whyNot when the
  /// file or none of its levels qualifies. `background` must be the slide's
  /// SlideOptions::background (what pixels outside the image become). `cache` may be shared
  /// between readers; when null the reader makes its own of `cacheBytes`.
  static std::unique_ptr<TiffTileReader> open(const Slide& slide,
                                              std::array<uint8_t, 3> background = {255, 255, 255},
                                              std::shared_ptr<TileCache> cache = nullptr,
                                              size_t cacheBytes = 32u << 20,
                                              std::string* whyNot = nullptr);
  ~TiffTileReader();
  TiffTileReader(const TiffTileReader&) = delete;
  TiffTileReader& operator=(const TiffTileReader&) = delete;

  bool supportsLevel(int level) const;
  /// {tile width, tile height} of a supported level.
  std::array<int, 2> tileSize(int level) const;
  /// Like Slide::readRegion into `out` (resized to w x h). Returns false, leaving `out`
  /// unspecified, when this read must go through OpenSlide instead. Throws SlideError naming
  /// the file, level, region and tile when a tile cannot be read or decoded.
  bool tryReadRegion(int64_t x, int64_t y, int level, int w, int h, RgbImage& out) const;
  Stats stats() const;

 private:
  struct Level;
  TiffTileReader() = default;
  TileCache::TilePtr tile(const Level& lv, int level, int64_t col, int64_t row, int64_t x,
                          int64_t y, int w, int h) const;

  std::string path_;
  int fd_ = -1;
  uint64_t id_ = 0;
  std::array<uint8_t, 3> background_{255, 255, 255};
  std::vector<std::unique_ptr<Level>> levels_;  // per slide level; null when not direct
  std::shared_ptr<TileCache> cache_;
  mutable std::atomic<int64_t> tilesDecoded_{0}, cacheHits_{0}, decodedBytes_{0},
      compressedBytes_{0};
};

// ---- TileCache template member -----------------------------------------------------------------
template <class Decode>
TileCache::TilePtr TileCache::get(const Key& key, Decode&& decode, bool* decoded) {
  *decoded = false;
  std::promise<TilePtr> promise;
  {
    std::unique_lock<std::mutex> lk(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      std::shared_future<TilePtr> f = it->second.tile;
      lk.unlock();  // the tile may still be decoding in another thread: wait without the lock
      ++hits_;
      return f.get();
    }
    lru_.push_front(key);
    map_.emplace(key, Entry{promise.get_future().share(), 0, lru_.begin()});
  }
  TilePtr t;
  try {
    t = decode();
  } catch (...) {
    promise.set_exception(std::current_exception());
    std::lock_guard<std::mutex> lk(mu_);
    auto it = map_.find(key);
    if (it != map_.end()) {  // forget the failure: a later read retries (and fails again)
      lru_.erase(it->second.lru);
      map_.erase(it);
    }
    throw;
  }
  promise.set_value(t);
  *decoded = true;
  ++decodes_;
  if (t) decodedBytes_ += static_cast<int64_t>(t->rgb.size());
  std::lock_guard<std::mutex> lk(mu_);
  auto it = map_.find(key);
  if (t && it != map_.end() && it->second.bytes == 0) {
    it->second.bytes = t->rgb.size() + sizeof(DecodedTile);
    bytes_ += it->second.bytes;
    evictLocked();
  }
  return t;
}

}  // namespace slidetrain::wsi
