// bench_augment: the cost of patch augmentation per 224-px patch, against a baseline measured in
// the same run - the default config's augmentation (flips, rot90, colour jitter) - and against
// reading the same patch from a synthetic slide through the stream's path (Slide::readRegion).
// (This timing used to be a unit test with a wall-clock bound; timed checks live here.)
//
// usage: bench_augment [--reps N]   (default 200)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "wsi/Augment.h"
#include "wsi/Slide.h"
#include "wsi/SynthCohort.h"

using namespace slidetrain::wsi;
namespace fs = std::filesystem;

namespace {

double msPerPatch(const RgbImage& src, const AugmentOptions& o, int reps) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) {
    RgbImage a = src;
    augmentPatch(a, o, static_cast<uint64_t>(i));
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 200;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::atoi(argv[i + 1]);
  const fs::path dir = fs::temp_directory_path() / "slidetrain_bench_augment";
  if (!fs::exists(dir / "cohort.csv")) {
    SynthOptions s;
    s.numSlides = 1, s.width = 2048, s.height = 1536, s.testFraction = 0, s.seed = 4;
    synthesizeCohort(dir.string(), s);
  }
  std::string slidePath;
  for (const auto& e : fs::directory_iterator(dir / "slides")) slidePath = e.path().string();
  auto slide = Slide::open(slidePath);
  // The read baseline: 224-px regions over the tissue-rich middle of the slide.
  const auto r0 = std::chrono::steady_clock::now();
  RgbImage patch;
  for (int i = 0; i < reps; ++i)
    patch = slide->readRegion(512 + (i % 8) * 112, 384 + (i / 8 % 4) * 112, 0, 224, 224);
  const double msRead =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - r0).count() / reps;

  AugmentOptions basic;  // flips + rot90 + colour jitter: the default config
  basic.brightness = basic.contrast = basic.saturation = 0.1, basic.hue = 0.02;
  AugmentOptions full = basic;
  full.rotate = 10, full.shift = 0.05, full.scale = 0.1, full.hed = 0.05;
  full.blur = 1.0, full.sharpen = 0.3, full.noise = 3;
  full.stainNorm = StainNorm::Reinhard;
  full.validate();
  const double msBasic = msPerPatch(patch, basic, reps), msFull = msPerPatch(patch, full, reps);
  std::printf("augmentation of a 224x224 patch (%d reps, 1 thread): read %.3f ms, default config "
              "%.3f ms (%.2fx the read), everything on %.3f ms (%.2fx the default, %.2fx the read)\n",
              reps, msRead, msBasic, msBasic / msRead, msFull, msFull / msBasic, msFull / msRead);
  return 0;
}
