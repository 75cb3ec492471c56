#include "src/SplitData.h"

#include <cstdio>

namespace slidetrain {

std::pair<int64_t, int64_t> shareOf(int64_t n, int rank, int world) {
  const int64_t base = n / world, extra = n % world;
  const int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

SplitData prepareSplit(const Config& cfg, const wsi::Cohort& cohort, const std::string& split,
                       dist::Comm& comm) {
  const TilingSettings ts = TilingSettings::fromConfig(cfg);
  const std::vector<size_t> which = cohort.indicesOfSplit(split);
  SplitData d;
  d.split = split;
  std::vector<SlideTiling> tiled;
  // Rank 0 builds missing cache entries; the others wait, then read them. Every rank sees the
  // same slides fail, so all agree on what is skipped without extra communication.
  if (comm.rank() == 0) tiled = tileCohort(cohort, which, ts, /*progress=*/false);
  comm.barrier();  // collective #1 of prepareSplit, on every rank
  if (comm.rank() != 0) tiled = tileCohort(cohort, which, ts, /*progress=*/false);

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
