#pragma once
// PatchIndex: the grid of patches kept over tissue for one slide, cached on disk in a compact
// binary file keyed by the slide fingerprint and every parameter that changes the grid.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "wsi/Slide.h"
#include "wsi/TissueMask.h"

namespace slidetrain::wsi {

class Annotations;
/// Maps an annotation class name to a class index; returns < 0 for a class the task ignores.
using LabelIndexOf = std::function<int32_t(const std::string&)>;

struct PatchIndexOptions {
  int level = 0;             ///< pyramid level patches are read at (when no target is set)
  int size = 224;            ///< patch side in output pixels
  int stride = 0;            ///< grid step in output pixels; 0 = size (no overlap)
  double minTissue = 0.5;    ///< keep patches whose tissue fraction is >= this
  /// Microns per output pixel. When set, `level` is ignored: the coarsest level at or finer than
  /// the target is read (see wsi/Resample.h) and resampled to `size`. Needs the slide's mpp.
  std::optional<double> targetMpp;
  /// Objective magnification (e.g. 20), the alternative to targetMpp: target downsample =
  /// objective power / magnification. Needs the slide's objective power.
  std::optional<double> targetMagnification;
  /// Background filters on the mask thumbnail under the patch; 1 = off. White = every channel >
  /// whiteThreshold, black = every channel < blackThreshold.
  double maxWhiteFraction = 1.0;
  double maxBlackFraction = 1.0;
  int whiteThreshold = 220;
  int blackThreshold = 30;
  void validate() const;
};

/// How annotations label patches (applied after the cached grid is loaded).
struct LabelOptions {
  enum class Mode { Centre, Area };
  /// Centre: the polygon under the patch centre. Area: the class covering the largest share of
  /// the patch, when that share is >= minArea (estimated on a grid x grid lattice of points).
  Mode mode = Mode::Centre;
  double minArea = 0.5;
  int grid = 8;
  /// Keep only patches whose centre lies inside some polygon (of any class, outside exclusions).
  bool roiOnly = false;
  void validate() const;
};

/// One patch: top-left in level-0 coordinates, read at `level` with side `readSize`, resampled
/// to `size`.
struct Patch {
  int64_t x = 0;
  int64_t y = 0;
  float tissue = 0;
  int32_t label = -1;  ///< class index, from the slide label (or annotations)
};

struct PatchIndex {
  std::string slidePath;
  std::string fingerprint;
  /// What was asked, except options.level: after build it is the level actually read (chosen
  /// from the target when one is set).
  PatchIndexOptions options;
  double levelDownsample = 1;  ///< downsample of options.level (level-0 px per level px)
  int readSize = 0;            ///< side read at options.level; 0 (old or hand-made) = size
  double patchMpp = 0;         ///< microns per output pixel; 0 when the slide's mpp is unknown
  double tissueFraction = 0;   ///< tissue share of the whole slide (from the mask)
  std::vector<Patch> patches;

  int readSide() const { return readSize > 0 ? readSize : options.size; }
  /// Side of a patch in level-0 pixels.
  double levelZeroSize() const { return readSide() * levelDownsample; }

  /// Lays the grid over the mask and keeps patches above the tissue threshold.
  static PatchIndex build(const Slide& slide, const TissueMask& mask,
                          const PatchIndexOptions& options, int32_t slideLabel);
  /// Same, then labels patches from annotations (see applyAnnotations).
  static PatchIndex build(const Slide& slide, const TissueMask& mask,
                          const PatchIndexOptions& options, int32_t slideLabel,
                          const Annotations* annotations, const LabelIndexOf& labelIndexOf);
  /// Relabels every patch: its centre (or, in area mode, most of its area) inside a polygon of
  /// class C gives labelIndexOf(C) (when >= 0), otherwise `defaultLabel`; with roiOnly, patches
  /// whose centre is in no polygon are dropped. Applied after the cache is loaded, so editing
  /// annotations does not invalidate cached grids.
  void applyAnnotations(const Annotations& annotations, int32_t defaultLabel,
                        const LabelIndexOf& labelIndexOf, const LabelOptions& labels = {});
  /// Writes atomically (temporary file + rename), so concurrent builders never see half a file.
  void save(const std::string& file) const;
  /// Reads and validates (magic, version, sizes, checksum); throws DataError naming the file.
  static PatchIndex load(const std::string& file);
  /// The bytes save() writes, and load() from bytes (`file` names them in errors).
  std::vector<char> serialize() const;
  static PatchIndex parse(const std::vector<char>& bytes, const std::string& file);
  /// CSV: slide_id,x,y,level,size,tissue,label,read_size (x, y in level-0 pixels).
  void writeCsv(const std::string& file, const std::string& slideId) const;
};

/// Stable fingerprint of a slide file (size, mtime, hash of first/last bytes).
std::string slideFingerprint(const std::string& path);
/// Cache file name for (fingerprint, options, mask options, format version) inside `cacheDir`.
/// `mppOverride` (the mpp the slide is opened with, when given) is part of the key when a target
/// resolution is set, since it decides the level and read size; a user mask file enters through
/// its fingerprint.
std::string patchIndexCachePath(const std::string& cacheDir, const std::string& slideId,
                                const std::string& fingerprint, const PatchIndexOptions& options,
                                const TissueMaskOptions& maskOptions,
                                std::optional<double> mppOverride = std::nullopt);

}  // namespace slidetrain::wsi
