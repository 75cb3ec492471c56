#pragma once
// Writes a cohort's patches as a patch-folder dataset (the layout data.source: patch_folders reads,
// wsi/PatchFolders.h): <dir>/<split>/<class>/<slide_id>_<x>_<y>.png, x and y the patch's level-0
// top-left. The patches are the tiling's (tiling.*: grid, tissue threshold, level or target mpp,
// patch size) with its labels (annotations where the cohort has them, else the slide label), so
// the images are what `train` on the slides would read, without augmentation. `slidetrain synth`
// calls it for synth.patch_folders.
#include <cstdint>
#include <string>

#include "src/config/Settings.h"
#include "wsi/Cohort.h"

namespace slidetrain {

struct PatchFolderCounts {
  int64_t images = 0;
  int slides = 0;
  std::string perFolder;  ///< "train/normal 120, train/tumor 40, ..."
};

/// Tiles every slide of `cohort` (through the patch-index cache), keeps at most `maxPerSlide`
/// patches per slide (evenly spaced over its grid order; 0 = all) whose label is a class, and
/// writes them as PNGs. A slide without a split goes to train. The train, val and test folders
/// already in `dir` are removed first, so a rerun leaves no stale image. Throws what tiling or
/// reading throws (naming the slide).
PatchFolderCounts writePatchFolders(const wsi::Cohort& cohort, const TilingSettings& tiling,
                                    const std::string& dir, int64_t maxPerSlide);

/// writePatchFolders for `slidetrain synth`: the cohort just written to synth.out_dir (its
/// annotations beside it) into synth.patch_folders.
PatchFolderCounts writeSynthPatchFolders(const Settings& settings);

}  // namespace slidetrain
