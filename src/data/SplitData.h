#pragma once
// The patches of one cohort split, ready to stream: slide paths and options, and one
// PatchRequest per patch whose id is its index in `samples` (the global sample index).
#include <string>
#include <vector>

#include "distributed/Comm.h"
#include "src/data/Tiling.h"
#include "wsi/Cohort.h"
#include "wsi/PatchStream.h"

namespace slidetrain {

struct SplitData {
  std::string split;
  std::vector<std::string> slideIds, paths;
  std::vector<int> slideLabels;
  std::vector<wsi::SlideOptions> slideOptions;
  /// Per slide: the downsample of the level its patches are read at, and microns per output
  /// pixel (0 when the slide records no mpp).
  std::vector<double> levelDownsample, patchMpp;
  std::vector<wsi::PatchRequest> samples;
  std::vector<std::string> skipped;  ///< "slide_id: reason" of slides left out
};

/// Tiles and flattens the patches of `split`. Several ranks share the tiling (slide k on rank
/// k mod W, into the cache), wait for each other without the collective timeout (rank 0 reports
/// every 30 s what the others do), then read the merged index from the cache. Collective: one
/// waitForAll and one all-reduce, in the same order on every rank. A patch-folder cohort
/// (cohort.imageFiles) is not tiled: one sample per image (slide = image, x = y = 0, size =
/// tiling.patch_size, SlideOptions::imageFile set) and no collective on any rank.
SplitData prepareSplit(const TilingSettings& ts, const wsi::Cohort& cohort, const std::string& split,
                       dist::Comm& comm);

/// Contiguous share [begin, end) of n items for `rank` of `world` (lower ranks get the extra).
std::pair<int64_t, int64_t> shareOf(int64_t n, int rank, int world);

}  // namespace slidetrain
