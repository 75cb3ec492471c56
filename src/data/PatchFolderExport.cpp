#include "src/data/PatchFolderExport.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "src/data/Tiling.h"
#include "wsi/ImageIo.h"
#include "wsi/Resample.h"
#include "wsi/Slide.h"

namespace fs = std::filesystem;

namespace slidetrain {

PatchFolderCounts writePatchFolders(const wsi::Cohort& cohort, const TilingSettings& tiling,
                                    const std::string& dir, int64_t maxPerSlide) {
  for (const char* split : {"train", "val", "test"}) fs::remove_all(fs::path(dir) / split);
  std::vector<size_t> all(cohort.slides.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const std::vector<SlideTiling> tiled = tileCohort(cohort, all, tiling, /*progress=*/false);

  std::mutex mu;
  std::map<std::string, int64_t> counts;  // "split/class" -> images
  PatchFolderCounts out;
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  auto work = [&] {
    for (size_t k = next++; k < tiled.size(); k = next++) {
      const SlideTiling& t = tiled[k];
      if (!t.ok) continue;  // skipped under on_bad_slide=skip (tileCohort reported it)
      const wsi::CohortEntry& e = cohort.slides[t.cohortIndex];
      const auto& patches = t.index.patches;
      const size_t n = patches.size();
      const size_t keep = maxPerSlide > 0 ? std::min<size_t>(n, static_cast<size_t>(maxPerSlide)) : n;
      try {
        const auto slide = wsi::Slide::open(e.path, slideOptionsFor(e, tiling));
        std::map<std::string, int64_t> mine;
        for (size_t j = 0; j < keep; ++j) {
          const wsi::Patch& p = patches[keep == n ? j : j * n / keep];  // evenly spaced
          if (p.label < 0 || static_cast<size_t>(p.label) >= cohort.classes.size()) continue;
          const std::string folder =
              (e.split.empty() ? std::string("train") : e.split) + "/" + cohort.classes[static_cast<size_t>(p.label)];
          fs::create_directories(fs::path(dir) / folder);
          const wsi::RgbImage img = wsi::readPatch(*slide, p.x, p.y, t.index.options.level, t.index.readSide(),
                                                   t.index.options.size);
          wsi::writePng(img, (fs::path(dir) / folder / (e.slideId + "_" + std::to_string(p.x) + "_" +
                                                        std::to_string(p.y) + ".png")).string(), "patch image");
          ++mine[folder];
        }
        std::lock_guard<std::mutex> lk(mu);
        for (const auto& [f, c] : mine) counts[f] += c, out.images += c;
        ++out.slides;
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu);
        if (!error) error = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < std::max(1, tiling.threads); ++i) pool.emplace_back(work);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  for (const auto& [f, c] : counts) out.perFolder += (out.perFolder.empty() ? "" : ", ") + f + " " + std::to_string(c);
  return out;
}

PatchFolderCounts writeSynthPatchFolders(const Settings& settings) {
  const fs::path out = settings.synth.outDir;
  const wsi::Cohort cohort = wsi::Cohort::read((out / "cohort.csv").string());
  TilingSettings t = settings.tiling;
  t.annotationsDir = (out / "annotations").string();  // synth's own, whatever `cohort` names
  return writePatchFolders(cohort, t, settings.synth.patchFolders, settings.synth.patchFolderMaxPerSlide);
}

}  // namespace slidetrain
