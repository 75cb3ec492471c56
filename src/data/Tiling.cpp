#include "src/data/Tiling.h"

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "distributed/Heartbeat.h"
#include "wsi/Annotations.h"
#include "wsi/Errors.h"
#include "wsi/Slide.h"
#include "wsi/TiffLayout.h"

namespace fs = std::filesystem;

namespace slidetrain {

wsi::SlideOptions slideOptionsFor(const wsi::CohortEntry& e, const TilingSettings& s) {
  wsi::SlideOptions o;
  o.mppOverride = e.mpp ? e.mpp : s.mppOverride;
  return o;
}

std::string findAnnotationFile(const std::string& dir, const std::string& slideId) {
  for (const char* ext : {".geojson", ".json", ".xml"}) {
    const fs::path p = fs::path(dir) / (slideId + ext);
    if (fs::exists(p)) return p.string();
  }
  return "";
}

namespace {

/// Why a slide yields no patch (it has no ROI problem): what the image holds, then the tissue.
std::string noPatchReason(const wsi::Slide& slide, double tissuePercent, const TilingSettings& s) {
  // What the file holds before OpenSlide or libvips show it as 8-bit RGB (TIFFs: most slides).
  std::string why;
  if (const auto l = wsi::readTiffLayout(slide.path())) {
    if (!l->rgb8())
      why = "the image has " + l->describe() + " per pixel and is shown as 8-bit RGB (" +
            slide.backend() + "); tissue detection and the models expect 8-bit RGB brightfield: "
            "convert the slide, or give masks in tissue.mask_dir";
    if (l->fullSizePages > 1)
      why += std::string(why.empty() ? "" : "; ") + "the file has " +
             std::to_string(l->fullSizePages) + " full-size pages (an OME-TIFF series or a "
             "multiplex stack?) and only the first is read";
  }
  auto fmt = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  const std::string threshold = s.tissue.threshold >= 0 ? fmt(s.tissue.threshold) : "Otsu";
  const std::string tissue =
      tissuePercent <= 0
          ? "no tissue at this threshold (tissue.threshold: " + threshold + ")"
          : "no patch reaches tiling.min_tissue " + fmt(s.index.minTissue) + " (tissue covers " +
                fmt(tissuePercent) + "% of the slide)";
  return why.empty() ? tissue : why + "; " + tissue;
}

}  // namespace

wsi::TissueMaskOptions tissueOptionsFor(const wsi::CohortEntry& e, const TilingSettings& s) {
  wsi::TissueMaskOptions tissue = s.tissue;
  if (!s.maskDir.empty()) {
    const fs::path png = fs::path(s.maskDir) / (e.slideId + ".png");
    if (fs::exists(png)) tissue.maskFile = png.string();
  }
  return tissue;
}

wsi::RgbImage tissueQcImage(const wsi::CohortEntry& e, const TilingSettings& s) {
  const auto slide = wsi::Slide::open(e.path, slideOptionsFor(e, s));
  const wsi::TissueMask mask = wsi::TissueMask::compute(*slide, tissueOptionsFor(e, s));
  return mask.qcImage(mask.thumbnail());
}

SlideTiling tileSlide(const wsi::Cohort& cohort, size_t i, const TilingSettings& s,
                      const std::string& qcDir) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& e = cohort.slides.at(i);
  SlideTiling r;
  r.cohortIndex = i;
  const std::string fp = wsi::slideFingerprint(e.path);
  const wsi::SlideOptions slideOptions = slideOptionsFor(e, s);
  // A user mask replaces Otsu for slides that have one; the others fall back to Otsu.
  const wsi::TissueMaskOptions tissue = tissueOptionsFor(e, s);
  r.userMask = !tissue.maskFile.empty();
  const std::string cachePath = wsi::patchIndexCachePath(s.cacheDir, e.slideId, fp, s.index,
                                                         tissue, slideOptions.mppOverride);
  const std::string qcFile =
      qcDir.empty() ? "" : (fs::path(qcDir) / (e.slideId + "_tissue.png")).string();
  std::unique_ptr<wsi::Slide> slide;
  std::optional<wsi::TissueMask> mask;
  if (fs::exists(cachePath)) {
    r.index = wsi::PatchIndex::load(cachePath);
    r.fromCache = true;
  } else {
    slide = wsi::Slide::open(e.path, slideOptions);
    mask = wsi::TissueMask::compute(*slide, tissue);
    r.index = wsi::PatchIndex::build(*slide, *mask, s.index, e.labelIndex);
    fs::create_directories(s.cacheDir);
    r.index.save(cachePath);  // atomic: concurrent builders never publish half a file
  }
  // The QC picture is written whenever the run folder lacks it, cached index or not.
  if (!qcFile.empty() && !fs::exists(qcFile)) {
    if (!mask) {
      slide = wsi::Slide::open(e.path, slideOptions);
      mask = wsi::TissueMask::compute(*slide, tissue);
    }
    fs::create_directories(qcDir);
    mask->writeQc(mask->thumbnail(), qcFile);
  }
  r.tissuePercent = 100.0 * r.index.tissueFraction;
  // The cache holds geometry; labels are joined from the cohort as it is NOW (a cached index keeps
  // the label of the run that built it, which is stale once cohort.csv changes).
  for (auto& p : r.index.patches) p.label = e.labelIndex;
  // Labels from annotations are applied after loading, so editing them keeps the cached grid.
  const std::string ann = s.useAnnotations ? findAnnotationFile(s.annotationsDir, e.slideId) : "";
  if (!ann.empty()) {
    // Class names match case-insensitively ("Tumor" in ASAP/QuPath files, "tumor" in the CSV).
    auto lower = [](std::string v) {
      for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return v;
    };
    auto indexOf = [&](const std::string& name) {
      const std::string n = lower(name);
      for (size_t c = 0; c < cohort.classes.size(); ++c)
        if (lower(cohort.classes[c]) == n) return static_cast<int32_t>(c);
      return static_cast<int32_t>(-1);
    };
    // Outside every polygon: the background class (e.g. "normal") when the cohort has it.
    const int32_t bg = indexOf(s.backgroundClass);
    const size_t beforeRoi = r.index.patches.size();
    r.index.applyAnnotations(wsi::Annotations::read(ann), bg >= 0 ? bg : e.labelIndex, indexOf,
                             s.labels);
    r.annotationFile = ann;
    if (beforeRoi > 0 && r.index.patches.empty())
      r.noPatches = "the ROI is empty: the regions of " + ann + " hold none of its " +
                    std::to_string(beforeRoi) + " tissue patches (tiling.roi_only)";
  }
  if (r.index.patches.empty() && r.noPatches.empty()) {
    if (!slide) slide = wsi::Slide::open(e.path, slideOptions);
    r.noPatches = noPatchReason(*slide, r.tissuePercent, s);
  }
  if (!r.noPatches.empty() && !s.skipBadSlides)
    throw wsi::DataError(e.path + ": slide " + e.slideId + " yields no patches: " + r.noPatches +
                    " (on_bad_slide=skip keeps going without it)");
  r.ok = true;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::string tilingSummary(const wsi::Cohort& cohort, const std::vector<SlideTiling>& results,
                          const std::string& cacheDir) {
  size_t ok = 0, patches = 0, cached = 0, skipped = 0, empty = 0;
  std::string out;
  for (const auto& r : results) {
    if (r.ok) {
      ++ok;
      patches += r.index.patches.size();
      cached += r.fromCache;
      if (!r.noPatches.empty()) {
        ++empty;
        out += "no patches: " + cohort.slides.at(r.cohortIndex).slideId + ": " + r.noPatches + "\n";
      }
    } else {
      ++skipped;
      const auto& e = cohort.slides.at(r.cohortIndex);
      out += "skipped: " + e.slideId + " (" + e.path + "): " + r.error + "\n";
    }
  }
  char line[512];
  std::snprintf(line, sizeof line,
                "tiled %zu/%zu slides (%zu from cache), %zu patches, %zu skipped, %zu without "
                "patches; cache %s\n", ok, results.size(), cached, patches, skipped, empty,
                cacheDir.c_str());
  return out + line;
}

std::vector<SlideTiling> tileCohort(const wsi::Cohort& cohort, const std::vector<size_t>& which,
                                    const TilingSettings& s, bool progress,
                                    const std::string& qcDir, const std::string& linePrefix) {
  std::vector<SlideTiling> out(which.size());
  std::atomic<size_t> next{0};
  std::mutex printMu;
  std::exception_ptr fatal;
  size_t done = 0;
  auto work = [&] {
    for (size_t k; (k = next++) < which.size();) {
      const size_t i = which[k];
      try {
        out[k] = tileSlide(cohort, i, s, qcDir);
      } catch (const std::exception& ex) {
        out[k].cohortIndex = i;
        out[k].error = ex.what();
        if (!s.skipBadSlides) {
          std::lock_guard<std::mutex> lk(printMu);
          if (!fatal) fatal = std::current_exception();
          next = which.size();  // stop handing out work
        }
      }
      std::lock_guard<std::mutex> lk(printMu);
      ++done;
      // What the other ranks' heartbeat reports show while they wait for this one.
      dist::noteWork("tiling " + std::to_string(done) + "/" + std::to_string(which.size()) + " slides");
      if (progress && !(out[k].fromCache && !linePrefix.empty())) {
        std::printf("%s", linePrefix.c_str());
        const auto& r = out[k];
        const auto& e = cohort.slides[i];
        if (r.ok) {
          char res[96] = "";
          if (r.index.readSide() != r.index.options.size)
            std::snprintf(res, sizeof res, "  L%d %d->%dpx", r.index.options.level,
                          r.index.readSide(), r.index.options.size);
          std::printf("[%3zu/%zu] %-24s %6zu patches  tissue %5.1f%%  %6.2fs%s%s%s%s\n", done,
                      which.size(), e.slideId.c_str(), r.index.patches.size(), r.tissuePercent,
                      r.seconds, res, r.userMask ? "  user mask" : "",
                      s.labels.roiOnly && r.annotationFile.empty() ? "  (no ROI: whole slide)" : "",
                      r.fromCache ? "  (cached)" : "");
          if (!r.noPatches.empty())
            std::printf("warning: %s yields no patches: %s\n", e.slideId.c_str(), r.noPatches.c_str());
        } else {
          std::printf("[%3zu/%zu] %-24s SKIPPED: %s\n", done, which.size(), e.slideId.c_str(),
                      r.error.c_str());
        }
        std::fflush(stdout);
      }
    }
  };
  std::vector<std::thread> pool;
  const int n = std::max(1, std::min<int>(s.threads, static_cast<int>(which.size())));
  for (int t = 0; t < n; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);
  return out;
}

}  // namespace slidetrain
