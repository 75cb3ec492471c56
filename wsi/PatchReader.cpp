// PatchReader: the slide-handle cache, the direct/fallback read of one patch, and tile order.
#include "wsi/PatchReader.h"

#include <algorithm>
#include <tuple>

#include "wsi/Errors.h"
#include "wsi/ImageIo.h"
#include "wsi/Resample.h"
#include "wsi/TiffTileReader.h"

namespace slidetrain::wsi {

PatchReader::PatchReader(std::vector<std::string> slidePaths,
                         std::vector<SlideOptions> perSlideOptions, const StreamOptions& options,
                         PatchTransform transform, TileSizeSeen onTileSize)
    : paths_(std::move(slidePaths)),
      slideOptions_(std::move(perSlideOptions)),
      defaultSlideOptions_(options.slideOptions),
      slideCache_(options.slideCache),
      directReads_(options.directReads),
      transform_(std::move(transform)),
      onTileSize_(std::move(onTileSize)),
      tileCache_(std::make_shared<TileCache>(static_cast<size_t>(options.tileCacheBytes))) {}

const std::string& PatchReader::path(int32_t slide) const {
  return paths_[slide < 0 || size_t(slide) >= paths_.size() ? 0 : slide];
}

PatchReader::Handle PatchReader::handle(int32_t index) {
  if (index < 0 || static_cast<size_t>(index) >= paths_.size())
    throw SlideError("PatchStream: slide index " + std::to_string(index) + " out of range");
  std::promise<Handle> promise;
  {
    std::unique_lock<std::mutex> lk(cacheMu_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->first == index) {
        cache_.splice(cache_.begin(), cache_, it);
        auto f = it->second;
        lk.unlock();  // another worker may still be opening it
        return f.get();
      }
    }
    cache_.emplace_front(index, promise.get_future().share());
    while (cache_.size() > static_cast<size_t>(slideCache_)) cache_.pop_back();
  }
  // Open outside the lock: opening can take a while and other workers should not wait on it.
  Handle h;
  try {
    const SlideOptions& so = slideOptions_.empty() ? defaultSlideOptions_ : slideOptions_[index];
    h.slide = Slide::open(paths_[index], so);
    if (directReads_) {
      h.reader = TiffTileReader::open(*h.slide, so.background, tileCache_);
      if (h.reader && onTileSize_) onTileSize_(index, h.reader->tileSize(0));
    }
  } catch (...) {
    promise.set_exception(std::current_exception());
    std::lock_guard<std::mutex> lk(cacheMu_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->first == index) {  // forget the failure: the next patch of this slide retries
        cache_.erase(it);
        break;
      }
    }
    throw;
  }
  promise.set_value(h);
  return h;
}

void PatchReader::read(const PatchRequest& r, RgbImage& img, RgbImage& scratch, bool* direct) {
  if (r.slide >= 0 && size_t(r.slide) < slideOptions_.size() && slideOptions_[r.slide].imageFile) {
    // A patch-folder image: the whole file is the patch, resized to r.size x r.size when its
    // size differs (aspect ratio not kept, like Keras' image_dataset_from_directory).
    *direct = false;
    scratch = readImageFile(paths_[r.slide]);
    if (scratch.width == r.size && scratch.height == r.size) std::swap(img, scratch);
    else img = resizeRgb(scratch, r.size, r.size);  // Lanczos-3 (libvips)
    if (transform_) transform_(img, r);
    if (img.width != r.size || img.height != r.size)
      throw SlideError("PatchStream: the transform changed the patch size");
    return;
  }
  const Handle h = handle(r.slide);
  const int side = r.readSize > 0 ? r.readSize : r.size;
  RgbImage& target = side == r.size ? img : scratch;
  *direct = h.reader && h.reader->tryReadRegion(r.x, r.y, r.level, side, side, target);
  if (!*direct) target = h.slide->readRegion(r.x, r.y, r.level, side, side);
  if (side != r.size) img = resizeRgb(scratch, r.size, r.size);  // Lanczos-3 (libvips)
  if (transform_) transform_(img, r);
  if (img.width != r.size || img.height != r.size)
    throw SlideError("PatchStream: the transform changed the patch size");
}

std::vector<std::pair<int64_t, int>> tileReadOrder(
    const std::vector<std::vector<PatchRequest>>& batches, int64_t begin, int64_t end,
    const std::vector<std::array<int, 2>>& tileSizes, int workers) {
  struct Keyed {
    std::tuple<int32_t, int32_t, int64_t, int64_t, int64_t, int> key;
    std::pair<int64_t, int> patch;
  };
  std::vector<Keyed> keyed;
  for (int64_t b = begin; b < end; ++b) {
    const auto& reqs = batches[b];
    for (int p = 0; p < static_cast<int>(reqs.size()); ++p) {
      const auto& r = reqs[p];
      const auto hint = r.slide >= 0 && size_t(r.slide) < tileSizes.size()
                            ? tileSizes[r.slide]
                            : std::array<int, 2>{0, 0};
      const int64_t tw = hint[0] > 0 ? hint[0] : 256, th = hint[1] > 0 ? hint[1] : 256;
      keyed.push_back({{r.slide, r.level, r.y / th, r.x / tw, b, p}, {b, p}});
    }
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const Keyed& a, const Keyed& b) { return a.key < b.key; });
  const size_t w = static_cast<size_t>(std::max(1, workers));
  const size_t seg = (keyed.size() + w - 1) / w;
  std::vector<std::pair<int64_t, int>> order;
  order.reserve(keyed.size());
  for (size_t i = 0; i < seg; ++i)
    for (size_t k = 0; k < w; ++k)
      if (k * seg + i < keyed.size()) order.push_back(keyed[k * seg + i].patch);
  return order;
}

}  // namespace slidetrain::wsi
