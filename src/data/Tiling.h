#pragma once
// Tiling: cohort -> patch indices (cached on disk). Used by `slidetrain tile` and by every rank of
// `train`/`predict`, which read the cache (or build a missing entry themselves).
#include <optional>
#include <string>
#include <vector>

#include "src/config/Settings.h"
#include "wsi/Cohort.h"
#include "wsi/PatchIndex.h"
#include "wsi/TissueMask.h"

namespace slidetrain {

struct SlideTiling {
  size_t cohortIndex = 0;
  bool ok = false;
  bool fromCache = false;
  std::string error;  ///< why it was skipped
  wsi::PatchIndex index;
  double tissuePercent = 0;  ///< tissue share of the slide (stored in the index, so cached too)
  double seconds = 0;
  bool userMask = false;     ///< the tissue mask came from tissue.mask_dir
  std::string annotationFile;  ///< annotations applied ("" when none)
  /// Why the slide yields no patch ("" when it has patches): the image is not 8-bit RGB (bands,
  /// bit depth, pages), no tissue at the threshold, none above tiling.min_tissue, or an empty ROI.
  std::string noPatches;
};

/// The annotation file of a slide: <dir>/<slide_id>.geojson, .json or .xml (first found), or "".
std::string findAnnotationFile(const std::string& dir, const std::string& slideId);

/// Loads or builds the patch index of one slide (throws on a bad slide). A slide that yields no
/// patch is a bad slide under on_bad_slide=fail (DataError with the reason); under skip it is
/// kept with `noPatches` saying why.
SlideTiling tileSlide(const wsi::Cohort& cohort, size_t i, const TilingSettings& s,
                      const std::string& qcDir = "");

/// Tiles the given cohort entries with `s.threads` threads; bad slides are skipped (reported in
/// the result) or rethrown according to s.skipBadSlides. `progress` prints a line per slide.
/// `linePrefix` (e.g. "rank 1/4 ") starts each progress line; with one, slides found in the
/// cache print no line (sharded tiling inside train: only real work is reported).
std::vector<SlideTiling> tileCohort(const wsi::Cohort& cohort, const std::vector<size_t>& which,
                                    const TilingSettings& s, bool progress,
                                    const std::string& qcDir = "", const std::string& linePrefix = "");

/// "skipped: <id> (<path>): <reason>" per skipped slide, then the summary line
/// "tiled K/N slides (C from cache), P patches, S skipped; cache <dir>".
std::string tilingSummary(const wsi::Cohort& cohort, const std::vector<SlideTiling>& results,
                          const std::string& cacheDir);

/// Slide options (mpp override from the cohort row, else the config).
wsi::SlideOptions slideOptionsFor(const wsi::CohortEntry& e, const TilingSettings& s);

/// The tissue-mask options of `e`: tiling's, with <tissue.mask_dir>/<slide_id>.png as its mask
/// when that file exists (the others fall back to Otsu).
wsi::TissueMaskOptions tissueOptionsFor(const wsi::CohortEntry& e, const TilingSettings& s);

/// The tissue QC picture of `e` as tiling computes its mask (TissueMask::qcImage over the mask's
/// thumbnail): what `slidetrain tile` writes to <run_dir>/qc/<slide_id>_tissue.png.
wsi::RgbImage tissueQcImage(const wsi::CohortEntry& e, const TilingSettings& s);

}  // namespace slidetrain
