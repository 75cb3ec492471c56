#include "src/data/SplitData.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include <ATen/ATen.h>

#include "distributed/Heartbeat.h"

namespace slidetrain {

std::pair<int64_t, int64_t> shareOf(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

namespace {

/// Patch folders: each image is a "slide" with one patch, the whole image resized to the patch
/// size (wsi::SlideOptions::imageFile). Nothing to tile and nothing to agree on: every rank
/// scanned the same sorted list, so no collective is issued (the same on every rank).
SplitData imageSplit(const TilingSettings& ts, const wsi::Cohort& cohort, const std::string& split,
                     const dist::Comm& comm) {
  SplitData d;
  d.split = split;
  for (size_t i : cohort.indicesOfSplit(split)) {
    const auto& e = cohort.slides[i];
    wsi::SlideOptions so;
    so.imageFile = true;
    wsi::PatchRequest r;
    r.slide = static_cast<int32_t>(d.paths.size());
    r.size = ts.index.size;
    r.label = e.labelIndex;
    r.id = static_cast<int64_t>(d.samples.size());
    d.slideIds.push_back(e.slideId);
    d.paths.push_back(e.path);
    d.slideLabels.push_back(e.labelIndex);
    d.slideOptions.push_back(so);
    d.levelDownsample.push_back(1);
    d.patchMpp.push_back(0);
    d.samples.push_back(r);
  }
  if (comm.rank() == 0)
    std::printf("%s split: %zu images (patch folders, resized to %d px where needed)\n", split.c_str(),
                d.samples.size(), ts.index.size);
  return d;
}

}  // namespace

SplitData prepareSplit(const TilingSettings& ts, const wsi::Cohort& cohort, const std::string& split,
                       dist::Comm& comm) {
  if (cohort.imageFiles) return imageSplit(ts, cohort, split, comm);
  const std::vector<size_t> which = cohort.indicesOfSplit(split);
  SplitData d;
  d.split = split;
  std::vector<SlideTiling> tiled;
  const int rank = comm.rank(), world = comm.size();
  if (world == 1) {
    tiled = tileCohort(cohort, which, ts, /*progress=*/false);
  } else {
    // Sharded: rank r tiles slides r, r + W, r + 2W, ... of the split into the cache (slides
    // already cached cost a read). Then every rank waits for the others without the collective
    // timeout (tiling a large cohort may take hours), and builds the merged index from the cache,
    // so all ranks hold the same patches in the same order. A slide that fails fails the same
    // way on every rank in the merge (on_bad_slide decides), so all agree on what is skipped.
    std::vector<size_t> mine;
    for (size_t k = static_cast<size_t>(rank); k < which.size(); k += static_cast<size_t>(world))
      mine.push_back(which[k]);
    const std::string prefix = "rank " + std::to_string(rank) + "/" + std::to_string(world) + " ";
    std::string error;
    try {
      const auto shard = tileCohort(cohort, mine, ts, /*progress=*/true, "", prefix);
      size_t built = 0;
      for (const auto& t : shard) built += t.fromCache ? 0 : 1;
      if (built > 0) {
        std::printf("%stiled %zu of its %zu %s slides; waiting for the other ranks\n", prefix.c_str(),
                    built, mine.size(), split.c_str());
        std::fflush(stdout);
      }
    } catch (const std::exception& e) {
      error = e.what();  // after the wait, so that no rank is left waiting for this one
    }
    const auto t0 = std::chrono::steady_clock::now();
    comm.waitForAll([&] {
      if (rank != 0) return;
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("tiling the %s split: rank 0 waited %.0f s for the other ranks (%s)\n", split.c_str(), s,
                  dist::peerActivity().c_str());
      std::fflush(stdout);
    }, std::chrono::seconds(30));
    at::Tensor failed = at::tensor({error.empty() ? 0.0 : 1.0}, at::kDouble);
    comm.allReduce(failed, dist::ReduceOp::Max);
    if (!error.empty()) throw std::runtime_error(error);
    if (failed.item<double>() > 0)
      throw std::runtime_error("rank " + std::to_string(rank) + ": another rank failed tiling the " + split +
                               " split (its message names the slide)");
    tiled = tileCohort(cohort, which, ts, /*progress=*/false);  // all from the cache now
  }

  for (const auto& t : tiled) {
    const auto& e = cohort.slides[t.cohortIndex];
    if (!t.ok) {
      d.skipped.push_back(e.slideId + ": " + t.error);
      continue;
    }
    const int32_t slideIdx = static_cast<int32_t>(d.paths.size());
    d.slideIds.push_back(e.slideId);
    d.paths.push_back(e.path);
    d.slideLabels.push_back(e.labelIndex);
    d.slideOptions.push_back(slideOptionsFor(e, ts));
    d.levelDownsample.push_back(t.index.levelDownsample);
    d.patchMpp.push_back(t.index.patchMpp);
    for (const auto& p : t.index.patches) {
      wsi::PatchRequest r;
      r.slide = slideIdx;
      r.x = p.x;
      r.y = p.y;
      r.level = t.index.options.level;
      r.size = t.index.options.size;
      r.readSize = t.index.readSize;
      r.label = p.label;
      r.id = static_cast<int64_t>(d.samples.size());
      d.samples.push_back(r);
    }
  }
  if (comm.rank() == 0) {
    for (const auto& s : d.skipped) std::fprintf(stderr, "warning: skipped slide %s\n", s.c_str());
    std::printf("%s split: %zu slides, %zu patches%s\n", split.c_str(), d.paths.size(),
                d.samples.size(),
                d.skipped.empty() ? "" : (", " + std::to_string(d.skipped.size()) + " slides skipped").c_str());
  }
  return d;
}

}  // namespace slidetrain
