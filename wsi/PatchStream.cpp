// PatchStream: worker threads, admission windows, the bounded prefetch queue and in-order
// delivery. How one patch is read, and in which order, is PatchReader's (PatchReader.h).
#include "wsi/PatchStream.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "wsi/Errors.h"
#include "wsi/PatchReader.h"
#include "wsi/TiffTileReader.h"

namespace slidetrain::wsi {

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

/// An admitted batch: its pixel buffer is allocated on admission and filled in place by the
/// workers (each patch position is written by exactly one worker, outside the lock).
struct PatchStream::Slot {
  Batch batch;
  std::vector<char> ok;
  int remaining = 0;
  std::exception_ptr error;
  int errorPos = INT_MAX;
  std::vector<std::string> reasons;
};

PatchStream::PatchStream(std::vector<std::string> slidePaths, StreamOptions options,
                         PatchTransform transform, std::vector<SlideOptions> perSlideOptions)
    : options_(std::move(options)) {
  options_.validate();
  if (!perSlideOptions.empty() && perSlideOptions.size() != slidePaths.size())
    throw std::invalid_argument("PatchStream: perSlideOptions must match the slide list");
  tileHint_.assign(slidePaths.size(), {0, 0});
  // The reader reports a slide's tile size when it opens it; admitLocked groups by it.
  auto onTileSize = [this](int32_t slide, std::array<int, 2> tileSize) {
    std::lock_guard<std::mutex> lk(mu_);
    tileHint_[slide] = tileSize;
  };
  reader_ = std::make_unique<PatchReader>(std::move(slidePaths), std::move(perSlideOptions),
                                          options_, std::move(transform), onTileSize);
  stats_.queueCapacity = options_.prefetchBatches;
}

PatchStream::~PatchStream() { stopWorkers(); }

void PatchStream::stopWorkers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  workCv_.notify_all();
  readyCv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void PatchStream::closePassLocked() {
  if (passOpen_) closedSeconds_ += since(passStart_);
  passOpen_ = false;
}

void PatchStream::start(std::vector<std::vector<PatchRequest>> batches) {
  stopWorkers();
  {
    std::lock_guard<std::mutex> lk(mu_);
    closePassLocked();
    batches_ = std::move(batches);
    admitted_ = nextToDeliver_ = 0;
    slots_.clear();
    tasks_.clear();
    ready_.clear();
    errors_.clear();
    stats_.bufferedBytes = 0;
    stopping_ = false;
    passOpen_ = true;
    passStart_ = std::chrono::steady_clock::now();
    for (const auto& b : batches_) {
      for (const auto& r : b) {
        if (r.size <= 0 || r.size != b.front().size)
          throw std::invalid_argument("PatchStream: patches of one batch must share a positive size");
      }
    }
    admitLocked();
  }
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { workerLoop(); });
}

void PatchStream::admitLocked() {
  const int64_t n = static_cast<int64_t>(batches_.size());
  const int window = options_.groupWindowBatches > 0
                         ? std::min(options_.groupWindowBatches, options_.prefetchBatches)
                         : std::max(1, options_.prefetchBatches / 2);
  for (;;) {
    const int64_t begin = admitted_, end = std::min<int64_t>(n, begin + window);
    // Bounded prefetch: never more than prefetchBatches batches beyond what was consumed.
    if (begin >= n || end > nextToDeliver_ + options_.prefetchBatches) return;
    for (int64_t b = begin; b < end; ++b) {
      const auto& reqs = batches_[b];
      auto slot = std::make_unique<Slot>();
      slot->batch.index = b;
      slot->batch.size = reqs.empty() ? 0 : reqs.front().size;
      slot->batch.pixels.allocate(reqs.size() * slot->batch.size * slot->batch.size * 3,
                                  options_.pixelAllocator);
      slot->ok.assign(reqs.size(), 0);
      slot->remaining = static_cast<int>(reqs.size());
      stats_.bufferedBytes += static_cast<int64_t>(slot->batch.pixels.size());
      const bool empty = reqs.empty();
      Slot& s = *slot;
      slots_.emplace(b, std::move(slot));
      if (empty) finishLocked(b, s);
    }
    // Patches sharing a tile are read together (each tile decoded once), one run per worker.
    for (const auto& [b, p] : tileReadOrder(batches_, begin, end, tileHint_, options_.workers))
      tasks_.push_back({b, p});
    stats_.peakBufferedBytes = std::max(stats_.peakBufferedBytes, stats_.bufferedBytes);
    admitted_ = end;
  }
}

void PatchStream::workerLoop() {
  RgbImage img, scratch;
  for (;;) {
    Task t;
    PatchRequest r;
    uint8_t* dest = nullptr;
    {
      std::unique_lock<std::mutex> lk(mu_);
      workCv_.wait(lk, [&] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      t = tasks_.front();
      tasks_.pop_front();
      r = batches_[t.batch][t.pos];
      Slot& s = *slots_.at(t.batch);
      dest = s.batch.pixels.data() + static_cast<size_t>(t.pos) * r.size * r.size * 3;
    }
    const auto t0 = std::chrono::steady_clock::now();
    bool direct = false;
    std::exception_ptr err;
    std::string reason;
    try {
      reader_->read(r, img, scratch, &direct);
      std::memcpy(dest, img.pixels.data(), img.pixels.size());
    } catch (const std::exception& e) {
      reason = reader_->path(r.slide) + ": patch " + std::to_string(r.id) + " at (" + std::to_string(r.x) + ", " +
               std::to_string(r.y) + ") level " + std::to_string(r.level) + ": " + e.what();
      err = std::make_exception_ptr(SlideError(reason));
    }
    const double seconds = since(t0);
    {
      std::lock_guard<std::mutex> lk(mu_);
      stats_.readSeconds += seconds;
      if (!err) {
        (direct ? stats_.directPatches : stats_.fallbackPatches) += 1;
        if (!direct) stats_.decodedBytes += static_cast<int64_t>(r.readSize > 0 ? r.readSize : r.size) *
                                            (r.readSize > 0 ? r.readSize : r.size) * 3;
      }
      auto it = slots_.find(t.batch);
      if (it != slots_.end()) {
        Slot& s = *it->second;
        if (err) {
          if (options_.skipBadPatches) {
            s.reasons.push_back(reason);
          } else if (t.pos < s.errorPos) {
            s.error = err, s.errorPos = t.pos;
          }
        } else {
          s.ok[t.pos] = 1;
        }
        if (--s.remaining == 0) finishLocked(t.batch, s);
      }
    }
  }
}

void PatchStream::finishLocked(int64_t index, Slot& s) {
  const auto& reqs = batches_[index];
  stats_.bufferedBytes -= static_cast<int64_t>(s.batch.pixels.size());
  if (s.error) {
    errors_[index] = s.error;
  } else {
    Batch& b = s.batch;
    const size_t px = static_cast<size_t>(b.size) * b.size * 3;
    size_t kept = 0;
    for (size_t i = 0; i < reqs.size(); ++i) {
      if (!s.ok[i]) continue;
      if (kept != i) std::memmove(b.pixels.data() + kept * px, b.pixels.data() + i * px, px);
      b.labels.push_back(reqs[i].label);
      b.ids.push_back(reqs[i].id);
      b.requests.push_back(reqs[i]);
      ++kept;
    }
    b.pixels.shrink(kept * px);
    stats_.patches += static_cast<int64_t>(kept);
    stats_.bytes += static_cast<int64_t>(b.pixels.size());
    stats_.skipped += static_cast<int64_t>(s.reasons.size());
    for (auto& r : s.reasons)
      if (stats_.skippedReasons.size() < 20) stats_.skippedReasons.push_back(std::move(r));
    ready_.emplace(index, std::move(b));
  }
  slots_.erase(index);  // `s` dies here
  readyCv_.notify_all();
}

std::optional<Batch> PatchStream::next() {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lk(mu_);
  if (nextToDeliver_ >= static_cast<int64_t>(batches_.size())) {
    closePassLocked();
    return std::nullopt;
  }
  fillSum_ += double(ready_.size()) / options_.prefetchBatches;
  ++fillSamples_;
  readyCv_.wait(lk, [&] { return ready_.count(nextToDeliver_) || errors_.count(nextToDeliver_); });
  stats_.waitSeconds += since(t0);
  std::exception_ptr err;
  std::optional<Batch> out;
  if (auto e = errors_.find(nextToDeliver_); e != errors_.end()) {
    err = e->second;
    errors_.erase(e);
  } else {
    out = std::move(ready_.extract(nextToDeliver_).mapped());
  }
  ++nextToDeliver_;
  const size_t before = tasks_.size();
  admitLocked();
  if (nextToDeliver_ >= static_cast<int64_t>(batches_.size())) closePassLocked();
  const bool more = tasks_.size() != before;
  lk.unlock();
  if (more) workCv_.notify_all();
  if (err) std::rethrow_exception(err);
  return out;
}

StreamStats PatchStream::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  StreamStats s = stats_;
  s.elapsedSeconds = closedSeconds_ + (passOpen_ ? since(passStart_) : 0);
  const auto c = reader_->tileCache().counters();
  s.tilesDecoded = c.decodes;
  s.tileCacheHits = c.hits;
  s.decodedBytes += c.decodedBytes;
  s.queued = static_cast<int>(ready_.size());
  s.meanQueueFill = fillSamples_ ? fillSum_ / fillSamples_ : 0;
  return s;
}

}  // namespace slidetrain::wsi
