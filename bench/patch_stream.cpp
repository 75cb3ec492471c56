// bench_patch_stream: PatchStream throughput against two baselines measured in the same run.
//
//   1. A synthetic slide of 20400 x 15120 px (Aperio-like 240-px JPEG tiles, so 256-px patches
//      straddle tiles as they do on real SVS files) is generated once into a cache folder.
//   2. Its tissue grid (256-px patches at level 0, >= 50 % tissue) is streamed in grid order with
//      PatchStream, one worker and all workers.
//   3. Raw decode limit: libvips (VIPS_CONCURRENCY=1) decodes every level-0 tile once.
//   4. Plain OpenSlide: openslide_read_region over the same patches, one handle, one thread.
// Rates are compared in pixels/s (a patch is 256^2 px; the raw decode covers the whole level).
//
// usage: bench_patch_stream [cache_dir] [--workers N] [--batch B]
#include <openslide.h>
#include <stdlib.h>

#include <vips/vips8>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "wsi/PatchStream.h"
#include "wsi/SynthCohort.h"
#include "wsi/TissueMask.h"

using namespace slidetrain::wsi;
namespace fs = std::filesystem;

namespace {
double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

constexpr int kTile = 240, kRep = 5, kSmallW = 4080, kSmallH = 3024;  // 17x12.6 tiles per copy
constexpr int kPatch = 256;

/// Generates (once) the big slide: a synthetic H&E slide of kSmallW x kSmallH replicated 5 x 5
/// and re-encoded as a tiled JPEG pyramid (quality 85, like the cohort generator).
std::string ensureSlide(const std::string& cacheDir) {
  const std::string out = cacheDir + "/patch_stream_" + std::to_string(kSmallW * kRep) + "x" +
                          std::to_string(kSmallH * kRep) + "_t" + std::to_string(kTile) + ".tiff";
  if (fs::exists(out)) return out;
  fs::create_directories(cacheDir);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string small = cacheDir + "/small";
  SynthOptions o;
  o.numSlides = 1, o.width = kSmallW, o.height = kSmallH, o.tileSize = kTile, o.seed = 7;
  o.tumorFraction = 1;
  synthesizeCohort(small, o);
  vips::VImage img = vips::VImage::new_from_file((small + "/slides/synth_000.tiff").c_str());
  img = img.replicate(kRep, kRep);
  const std::string tmp = out + ".part.tiff";
  img.tiffsave(tmp.c_str(), vips::VImage::option()
                                ->set("tile", true)
                                ->set("tile_width", kTile)
                                ->set("tile_height", kTile)
                                ->set("pyramid", true)
                                ->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_JPEG)
                                ->set("Q", 85)
                                ->set("resunit", VIPS_FOREIGN_TIFF_RESUNIT_CM)
                                ->set("xres", 20000.0)
                                ->set("yres", 20000.0));
  fs::rename(tmp, out);
  fs::remove_all(small);
  std::printf("generated %s in %.1f s\n", out.c_str(), since(t0));
  return out;
}

double streamRate(const std::string& path, const std::vector<PatchRequest>& grid, int workers,
                  int batch, StreamStats* statsOut, bool direct = true, double* cpu = nullptr) {
  StreamOptions so;
  so.workers = workers;
  so.prefetchBatches = 4;
  so.directReads = direct;
  PatchStream stream({path}, so);
  std::vector<std::vector<PatchRequest>> batches;
  for (size_t i = 0; i < grid.size(); i += batch)
    batches.emplace_back(grid.begin() + long(i), grid.begin() + long(std::min(grid.size(), i + batch)));
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpuSeconds();
  stream.start(std::move(batches));
  int64_t n = 0;
  while (auto b = stream.next()) n += static_cast<int64_t>(b->count());
  const double s = since(t0);
  if (cpu) *cpu = cpuSeconds() - c0;
  if (statsOut) *statsOut = stream.stats();
  return n / s;
}
}  // namespace

int main(int argc, char** argv) {
  setenv("VIPS_CONCURRENCY", "1", 1);  // before libvips starts: the raw baseline is one thread
  std::string cacheDir;
  int workers = defaultStreamWorkers(), batch = 64;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--workers") && i + 1 < argc) workers = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoi(argv[++i]);
    else cacheDir = argv[i];
  }
  if (cacheDir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    cacheDir = std::string(tmp && *tmp ? tmp : "/tmp") + "/slidetrain_bench";
  }
  if (VIPS_INIT(argv[0])) {
    std::fprintf(stderr, "libvips failed to start\n");
    return 1;
  }
  const std::string path = ensureSlide(cacheDir);
  auto slide = Slide::open(path);
  const auto dim = slide->levelDimensions(0);

  // Tissue grid at level 0.
  TissueMask mask = TissueMask::compute(*slide);
  std::vector<PatchRequest> grid;
  for (int64_t y = 0; y + kPatch <= dim[1]; y += kPatch)
    for (int64_t x = 0; x + kPatch <= dim[0]; x += kPatch)
      if (mask.fraction(x, y, kPatch, kPatch) >= 0.5) {
        PatchRequest r;
        r.x = x, r.y = y, r.size = kPatch, r.label = 0, r.id = int64_t(grid.size());
        grid.push_back(r);
      }
  std::printf("slide %s: %lld x %lld, %d-px JPEG tiles, vendor %s\n", path.c_str(), (long long)dim[0],
              (long long)dim[1], kTile, slide->vendor().c_str());
  std::printf("tissue grid: %zu patches of %d px (level 0), batches of %d\n", grid.size(), kPatch, batch);
  const double patchPx = double(kPatch) * kPatch;

  // (a) raw decode limit: every level-0 tile once with libvips, one thread.
  double rawPxPerS = 0;
  {
    vips::VImage img = vips::VImage::new_from_file(path.c_str());
    const auto t0 = std::chrono::steady_clock::now();
    const double avg = img.avg();  // pulls (decodes) every tile once
    const double s = since(t0);
    rawPxPerS = double(img.width()) * img.height() / s;
    std::printf("raw decode (libvips, VIPS_CONCURRENCY=1): %.1f Mpx/s = %.0f patch-equivalents/s (%.2f s, avg %.1f)\n",
                rawPxPerS / 1e6, rawPxPerS / patchPx, s, avg);
  }
  // (b) plain OpenSlide read_region loop over the same patches.
  double osPatchesPerS = 0;
  {
    openslide_t* osr = openslide_open(path.c_str());
    std::vector<uint32_t> argb(size_t(kPatch) * kPatch);
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& r : grid) openslide_read_region(osr, argb.data(), r.x, r.y, 0, kPatch, kPatch);
    const double s = since(t0);
    if (const char* e = openslide_get_error(osr)) std::printf("openslide error: %s\n", e);
    openslide_close(osr);
    osPatchesPerS = grid.size() / s;
    std::printf("openslide_read_region loop: %.0f patches/s (%.2f s)\n", osPatchesPerS, s);
  }
  // PatchStream, one worker and all workers (direct reads), and one worker through OpenSlide.
  StreamStats s1, sN, sOs;
  double cpu1 = 0, cpuN = 0;
  const double one = streamRate(path, grid, 1, batch, &s1, true, &cpu1);
  std::printf("PatchStream 1 worker: %.0f patches/s  (decoded %.0f MB/s, %lld tiles decoded, %lld cache hits, wait share %.0f%%)\n",
              one, s1.decodedMBPerSecond(), (long long)s1.tilesDecoded, (long long)s1.tileCacheHits,
              100 * s1.waitShare());
  const double all = streamRate(path, grid, workers, batch, &sN, true, &cpuN);
  std::printf("PatchStream %d workers: %.0f patches/s  (decoded %.0f MB/s, %lld tiles decoded, mean queue fill %.0f%%)\n",
              workers, all, sN.decodedMBPerSecond(), (long long)sN.tilesDecoded, 100 * sN.meanQueueFill);
  const double oneOs = streamRate(path, grid, 1, batch, &sOs, /*direct=*/false);
  std::printf("PatchStream 1 worker, directReads off (OpenSlide): %.0f patches/s\n", oneOs);

  std::printf("CPU use: 1 worker %.2f cores, %d workers %.2f cores; patches per CPU-second %.0f vs %.0f\n",
              cpu1 * one / grid.size(), workers, cpuN * all / grid.size(), grid.size() / cpu1, grid.size() / cpuN);
  const double rOneRaw = one * patchPx / rawPxPerS, rOneOs = one / osPatchesPerS, rAll = all / one;
  std::printf("\nratio 1 worker / raw decode limit : %.2f  (target >= 0.8)  %s\n", rOneRaw, rOneRaw >= 0.8 ? "MET" : "MISSED");
  std::printf("ratio 1 worker / read_region loop : %.2f  (target >= 2.5)  %s\n", rOneOs, rOneOs >= 2.5 ? "MET" : "MISSED");
  std::printf("ratio %d workers / 1 worker        : %.2f  (target >= 1.7 for 2 threads)  %s\n", workers, rAll,
              workers < 2 ? "n/a" : rAll >= 1.7 ? "MET" : "MISSED");
  vips_shutdown();
  return 0;
}
