// PatchIndex: the tissue grid of one slide, its labels, and its cache key. The binary file format
// lives in PatchIndexFile.cpp.
#include "wsi/PatchIndex.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>

#include "wsi/Annotations.h"
#include "wsi/Errors.h"
#include "wsi/PatchIndexFile.h"
#include "wsi/Resample.h"

namespace slidetrain::wsi {

void PatchIndexOptions::validate() const {
  auto fail = [](const std::string& key, const std::string& what) {
    throw std::invalid_argument("tiling." + key + ": " + what);
  };
  if (level < 0) fail("level", "expected >= 0, got " + std::to_string(level));
  if (size < 1 || size > 65536) fail("patch_size", "expected 1..65536, got " + std::to_string(size));
  if (stride < 0) fail("stride", "expected >= 0 (0 = patch_size), got " + std::to_string(stride));
  if (!(minTissue >= 0 && minTissue <= 1)) fail("min_tissue", "expected 0..1");
  if (targetMpp && !(*targetMpp > 0)) fail("target_mpp", "expected a positive number");
  if (targetMagnification && !(*targetMagnification > 0))
    fail("target_magnification", "expected a positive number");
  if (targetMpp && targetMagnification)
    fail("target_mpp", "set either tiling.target_mpp or tiling.target_magnification, not both");
  if (!(maxWhiteFraction >= 0 && maxWhiteFraction <= 1)) fail("max_white_fraction", "expected 0..1");
  if (!(maxBlackFraction >= 0 && maxBlackFraction <= 1)) fail("max_black_fraction", "expected 0..1");
  if (whiteThreshold < 0 || whiteThreshold > 255) fail("white_threshold", "expected 0..255");
  if (blackThreshold < 0 || blackThreshold > 255) fail("black_threshold", "expected 0..255");
}

void LabelOptions::validate() const {
  if (!(minArea > 0 && minArea <= 1))
    throw std::invalid_argument("tiling.min_label_area: expected a fraction in (0, 1]");
  if (grid < 1 || grid > 64) throw std::invalid_argument("tiling.label_grid: expected 1..64");
}

PatchIndex PatchIndex::build(const Slide& slide, const TissueMask& mask,
                             const PatchIndexOptions& options, int32_t slideLabel) {
  options.validate();
  const PatchGeometry g = resolvePatchGeometry(slide, options.size, options.level,
                                               options.targetMpp, options.targetMagnification);
  PatchIndex index;
  index.slidePath = slide.path();
  index.fingerprint = slideFingerprint(slide.path());
  index.options = options;
  index.options.level = g.level;
  index.levelDownsample = g.levelDownsample;
  index.readSize = g.readSize;
  index.patchMpp = g.mpp;
  index.tissueFraction = mask.tissueFraction();
  const auto [lw, lh] = slide.levelDimensions(g.level);
  const double ds = g.levelDownsample;
  // The grid step is in output pixels; in level-0 pixels it is step * (level-0 px per output
  // px). Without a target that is stride * downsample, exactly the level grid.
  const double step0 = double(options.stride > 0 ? options.stride : options.size) *
                       g.levelZeroPerPixel();
  const int64_t side0 = std::llround(g.readSize * ds);
  const bool filterWhite = options.maxWhiteFraction < 1, filterBlack = options.maxBlackFraction < 1;
  // Only whole patches: a patch that runs off the level would be padded with background.
  auto fits = [&](int64_t p0, int64_t levelExtent) {
    return std::llround(double(p0) / ds) + g.readSize <= levelExtent;
  };
  for (int64_t ky = 0;; ++ky) {
    const int64_t y = std::llround(double(ky) * step0);
    if (!fits(y, lh)) break;
    for (int64_t kx = 0;; ++kx) {
      const int64_t x = std::llround(double(kx) * step0);
      if (!fits(x, lw)) break;
      Patch p;
      p.x = x;
      p.y = y;
      p.tissue = float(mask.fraction(p.x, p.y, side0, side0));
      if (p.tissue < options.minTissue) continue;
      if (filterWhite && mask.whiteFraction(p.x, p.y, side0, side0, options.whiteThreshold) >
                             options.maxWhiteFraction)
        continue;
      if (filterBlack && mask.blackFraction(p.x, p.y, side0, side0, options.blackThreshold) >
                             options.maxBlackFraction)
        continue;
      p.label = slideLabel;
      index.patches.push_back(p);
    }
  }
  return index;
}

PatchIndex PatchIndex::build(const Slide& slide, const TissueMask& mask,
                             const PatchIndexOptions& options, int32_t slideLabel,
                             const Annotations* annotations, const LabelIndexOf& labelIndexOf) {
  PatchIndex index = build(slide, mask, options, slideLabel);
  if (annotations) index.applyAnnotations(*annotations, slideLabel, labelIndexOf);
  return index;
}

void PatchIndex::applyAnnotations(const Annotations& annotations, int32_t defaultLabel,
                                  const LabelIndexOf& labelIndexOf, const LabelOptions& labels) {
  labels.validate();
  const double side = levelZeroSize(), half = side / 2;
  std::map<std::string, int32_t> classIndex;
  auto indexOf = [&](const std::string& cls) -> int32_t {
    if (cls.empty() || !labelIndexOf) return -1;
    auto it = classIndex.find(cls);
    if (it == classIndex.end()) it = classIndex.emplace(cls, labelIndexOf(cls)).first;
    return it->second;
  };
  const auto& polys = annotations.polygons();
  const auto& holes = annotations.exclusions();
  auto overlaps = [&](const AnnotationPolygon& a, double x0, double y0) {
    return a.bounds[0] <= x0 + side && a.bounds[2] >= x0 && a.bounds[1] <= y0 + side &&
           a.bounds[3] >= y0;
  };
  std::vector<const AnnotationPolygon*> cand, candHoles;
  std::vector<Patch> kept;
  kept.reserve(patches.size());
  for (auto p : patches) {
    const double cx = double(p.x) + half, cy = double(p.y) + half;
    if (labels.roiOnly && annotations.labelAt(cx, cy).empty()) continue;
    if (labels.mode == LabelOptions::Mode::Centre) {
      const int32_t idx = indexOf(annotations.labelAt(cx, cy));
      p.label = idx >= 0 ? idx : defaultLabel;
    } else {
      // Area share of each class, estimated on a grid x grid lattice of cell centres; only the
      // polygons whose bounds meet the patch are tested.
      cand.clear(), candHoles.clear();
      for (const auto& a : polys)
        if (overlaps(a, double(p.x), double(p.y))) cand.push_back(&a);
      for (const auto& a : holes)
        if (overlaps(a, double(p.x), double(p.y))) candHoles.push_back(&a);
      std::map<int32_t, int> votes;
      const int k = labels.grid;
      for (int j = 0; j < k && !cand.empty(); ++j)
        for (int i = 0; i < k; ++i) {
          const double x = double(p.x) + (i + 0.5) * side / k, y = double(p.y) + (j + 0.5) * side / k;
          bool hole = false;
          for (const auto* h : candHoles) hole = hole || h->contains(x, y);
          if (hole) continue;
          for (auto it = cand.rbegin(); it != cand.rend(); ++it)  // last listed is on top
            if ((*it)->contains(x, y)) {
              const int32_t idx = indexOf((*it)->className);
              if (idx >= 0) ++votes[idx];
              break;
            }
        }
      int32_t best = -1;
      int bestVotes = 0;
      for (const auto& [idx, n] : votes)
        if (n > bestVotes) best = idx, bestVotes = n;  // ties: the lower class index
      p.label = best >= 0 && double(bestVotes) / (k * k) >= labels.minArea - 1e-12 ? best
                                                                              : defaultLabel;
    }
    kept.push_back(p);
  }
  patches = std::move(kept);
}

void PatchIndex::writeCsv(const std::string& file, const std::string& slideId) const {
  std::ofstream out(file);
  if (!out) throw DataError("cannot write patch CSV '" + file + "'");
  out << "slide_id,x,y,level,size,tissue,label,read_size\n";
  for (const auto& p : patches) {
    out << slideId << ',' << p.x << ',' << p.y << ',' << options.level << ',' << options.size
        << ',' << p.tissue << ',' << p.label << ',' << readSide() << '\n';
  }
  if (!out.flush()) throw DataError("cannot write patch CSV '" + file + "': write failed");
}

std::string slideFingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw SlideError("cannot fingerprint slide '" + path + "': file does not exist");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SlideError("cannot fingerprint slide '" + path + "': not readable");
  // Head and tail catch re-exports and truncation without reading gigabytes.
  constexpr std::streamoff kChunk = 64 * 1024;
  const std::streamoff size = st.st_size;
  std::vector<char> buf(size_t(std::min(size, kChunk)));
  uint64_t h = detail::fnv1a(nullptr, 0);
  in.read(buf.data(), std::streamsize(buf.size()));
  h = detail::fnv1a(buf.data(), size_t(in.gcount()), h);
  if (size > kChunk) {
    in.clear();
    in.seekg(std::max(kChunk, size - kChunk));
    in.read(buf.data(), std::streamsize(buf.size()));
    h = detail::fnv1a(buf.data(), size_t(in.gcount()), h);
  }
  char out[80];
  std::snprintf(out, sizeof out, "%llx-%llx-%016llx", (unsigned long long)size,
                (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + st.st_mtim.tv_nsec,
                (unsigned long long)h);
  return out;
}

std::string patchIndexCachePath(const std::string& cacheDir, const std::string& slideId,
                                const std::string& fingerprint, const PatchIndexOptions& options,
                                const TissueMaskOptions& maskOptions,
                                std::optional<double> mppOverride) {
  std::string id;
  for (char c : slideId.substr(0, 96))
    id += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  // Every parameter that changes which patches exist is in the name, readable on purpose.
  char params[256];
  std::snprintf(params, sizeof params, "L%d_S%d_T%d_M%.6g__tm%d_t%.6g_m%d_c%d_a%d_h%d",
                options.level, options.size, options.stride > 0 ? options.stride : options.size,
                options.minTissue, maskOptions.thumbnailMaxSide,
                maskOptions.threshold < 0 ? -1.0 : maskOptions.threshold, maskOptions.medianRadius,
                maskOptions.closeRadius, maskOptions.minComponentArea,
                maskOptions.fillHoles ? 1 : 0);
  std::string extra;
  char buf[128];
  if (options.targetMpp || options.targetMagnification) {
    std::snprintf(buf, sizeof buf, options.targetMpp ? "_mpp%.6g" : "_mag%.6g",
                  options.targetMpp ? *options.targetMpp : *options.targetMagnification);
    extra += buf;
    if (mppOverride) std::snprintf(buf, sizeof buf, "_ov%.6g", *mppOverride), extra += buf;
  }
  if (options.maxWhiteFraction < 1)
    std::snprintf(buf, sizeof buf, "_w%.6g-%d", options.maxWhiteFraction, options.whiteThreshold),
        extra += buf;
  if (options.maxBlackFraction < 1)
    std::snprintf(buf, sizeof buf, "_b%.6g-%d", options.maxBlackFraction, options.blackThreshold),
        extra += buf;
  extra += "__lv" + std::to_string(maskOptions.level);
  if (maskOptions.background != "auto") extra += "_bg" + maskOptions.background;
  // A user mask enters through its own fingerprint (editing the PNG rebuilds the grid).
  if (!maskOptions.maskFile.empty()) {
    const std::string fp = slideFingerprint(maskOptions.maskFile);
    extra += "_um" + fp.substr(fp.size() - 16);
  }
  std::string dir = cacheDir;
  if (!dir.empty() && dir.back() != '/') dir += '/';
  return dir + id + "__" + fingerprint + "__" + params + extra + "__v" +
         std::to_string(detail::kPatchIndexVersion) + ".pidx";
}

}  // namespace slidetrain::wsi
