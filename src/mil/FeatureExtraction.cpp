#include "src/mil/FeatureExtraction.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <numeric>
#include <sstream>

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/utils.h>

#include "src/data/BatchTensor.h"
#include "src/data/StreamOptions.h"
#include "src/mil/FeatureFile.h"
#include "src/train/Amp.h"
#include "src/train/Progress.h"
#include "wsi/PatchIndexFile.h"

namespace fs = std::filesystem;

namespace slidetrain::mil {

std::vector<int> shardByPatchCount(const std::vector<int64_t>& patches, int world) {
  std::vector<size_t> order(patches.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return patches[a] > patches[b]; });
  std::vector<int64_t> load(static_cast<size_t>(std::max(world, 1)), 0);
  std::vector<int> rankOf(patches.size(), 0);
  for (size_t s : order) {
    const auto r = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    rankOf[s] = static_cast<int>(r);
    load[r] += patches[s];
  }
  return rankOf;
}

namespace {

/// FNV-1a (the patch index's checksum), 64 bits, as 16 hex digits.
std::string digest(const std::string& text) {
  const uint64_t h = wsi::detail::fnv1a(text.data(), text.size());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string join(const std::vector<double>& v) {
  std::ostringstream o;
  o.precision(17);
  for (double x : v) o << x << ",";
  return o.str();
}

}  // namespace

std::string featuresFingerprint(const SplitData& data, size_t slide,
                                const std::vector<wsi::PatchRequest>& patches, const Encoder& encoder,
                                const FeaturesSettings& features, const std::vector<double>& mean,
                                const std::vector<double>& std, const wsi::AugmentOptions& augment) {
  std::ostringstream t;
  std::error_code ec;
  t << "encoder=" << encoder.name() << "\nweights=" << encoder.weightsId()
    << "\ninput_size=" << encoder.inputSize() << "\nmean=" << join(mean) << "\nstd=" << join(std)
    << "\nstain_norm=" << (augment.stainNorm == wsi::StainNorm::Reinhard ? "reinhard" : "none");
  if (augment.stainNorm == wsi::StainNorm::Reinhard)
    t << join({augment.reinhardMean.begin(), augment.reinhardMean.end()})
      << join({augment.reinhardStd.begin(), augment.reinhardStd.end()});
  t << "\ndtype=" << (features.float16 ? "float16" : "float32") << "\nslide=" << data.paths[slide]
    << " " << fs::file_size(data.paths[slide], ec) << "\npatches=";
  for (const auto& r : patches)
    t << r.x << "," << r.y << "," << r.level << "," << r.size << "," << r.readSize << ";";
  return digest(t.str());
}

std::string featureFilePath(const FeaturesSettings& features, const std::string& slideId) {
  return (fs::path(features.outDir) / (slideId + ".h5")).string();
}

ExtractionSummary extractFeatures(const Settings& settings, const SplitData& data, Encoder& encoder,
                                  const dist::Planes& planes) {
  const auto t0 = std::chrono::steady_clock::now();
  const FeaturesSettings& fo = settings.features;
  const int rank = planes.rank(), world = planes.host->size();
  const bool lead = rank == 0;
  Normalization norm = normalization(settings.data);
  if (!fo.mean.empty()) norm.mean = fo.mean;
  if (!fo.std.empty()) norm.std = fo.std;
  const size_t numSlides = data.paths.size();

  std::vector<std::vector<wsi::PatchRequest>> perSlide(numSlides);
  for (const auto& r : data.samples) perSlide[static_cast<size_t>(r.slide)].push_back(r);
  std::vector<int64_t> counts(numSlides);
  for (size_t s = 0; s < numSlides; ++s) counts[s] = static_cast<int64_t>(perSlide[s].size());
  const std::vector<int> rankOf = shardByPatchCount(counts, world);

  // This rank's slides: those already written with the same fingerprint are skipped.
  fs::create_directories(fo.outDir);
  std::vector<size_t> mine;
  std::map<size_t, std::string> fingerprints;
  int64_t upToDate = 0;
  for (size_t s = 0; s < numSlides; ++s) {
    if (rankOf[s] != rank) continue;
    const std::string fp = featuresFingerprint(data, s, perSlide[s], encoder, fo, norm.mean, norm.std, settings.augment);
    if (storedFingerprint(featureFilePath(fo, data.slideIds[s])) == fp) {
      ++upToDate;
      continue;
    }
    fingerprints[s] = fp;
    mine.push_back(s);
  }

  // Batches never cross slides, so a slide is complete when its last batch is encoded.
  std::vector<std::vector<wsi::PatchRequest>> batches;
  std::map<size_t, int64_t> batchesLeft;
  int64_t myPatches = 0;
  for (size_t s : mine) {
    const auto& reqs = perSlide[s];
    myPatches += static_cast<int64_t>(reqs.size());
    for (size_t i = 0; i < reqs.size(); i += static_cast<size_t>(fo.batchSize)) {
      batches.emplace_back(reqs.begin() + static_cast<std::ptrdiff_t>(i),
                           reqs.begin() + static_cast<std::ptrdiff_t>(std::min(reqs.size(), i + fo.batchSize)));
      ++batchesLeft[s];
    }
  }
  wsi::PatchTransform transform;
  const wsi::AugmentOptions& aug = settings.augment;
  if (aug.stainNorm == wsi::StainNorm::Reinhard)
    transform = [&aug](wsi::RgbImage& img, const wsi::PatchRequest&) {
      wsi::reinhardNormalize(img, aug.reinhardMean, aug.reinhardStd);
    };
  const at::Device device = encoder.device();
  wsi::StreamOptions so = rankStreamOptions(settings, device.is_cuda());
  so.pixelAllocator = pixelAllocatorFor(device);
  wsi::PatchStream stream(data.paths, so, transform, data.slideOptions);
  stream.start(std::move(batches));

  // Encoded rows of each slide in flight, by sample id (sorted when written).
  std::map<size_t, std::map<int64_t, at::Tensor>> rows;
  int64_t done = 0, slidesDone = 0, written = 0;
  const AmpMode amp = parseAmpMode(settings.train.amp);
  auto lastPrint = std::chrono::steady_clock::now();
  torch::NoGradGuard noGrad;
  // Writes a complete slide: its rows in patch order (skipped patches have none).
  auto finishSlide = [&](size_t slide) {
    auto& got = rows[slide];
    std::vector<at::Tensor> list;
    std::vector<int64_t> coords;
    for (auto& [id, row] : got) {
      list.push_back(row);
      coords.push_back(data.samples[static_cast<size_t>(id)].x);
      coords.push_back(data.samples[static_cast<size_t>(id)].y);
    }
    const at::Tensor features = list.empty() ? at::zeros({0, encoder.dim()}) : at::stack(list);
    FeatureFileInfo info;
    info.slideId = data.slideIds[slide];
    info.encoder = encoder.name();
    info.encoderWeights = encoder.weightsId();
    info.fingerprint = fingerprints.at(slide);
    const int32_t size = settings.tiling.index.size;
    const int32_t read = perSlide[slide].empty() ? size : perSlide[slide].front().readSize;
    info.patchSize = size;
    info.patchLevel = perSlide[slide].empty() ? 0 : perSlide[slide].front().level;
    info.patchSizeLevel0 = static_cast<int64_t>(std::lround((read > 0 ? read : size) * data.levelDownsample[slide]));
    info.mpp = data.patchMpp[slide];
    info.inputSize = encoder.inputSize();
    writeFeatureFile(featureFilePath(fo, info.slideId), features, coords, info, fo.float16);
    rows.erase(slide);
  };
  for (size_t s : mine)
    if (perSlide[s].empty()) finishSlide(s), ++written;  // no tissue patch: an empty bag

  const DeviceBatch inputs(norm, device);  // mean/std on the device once
  while (auto b = stream.next()) {
    if (b->requests.empty()) continue;
    const size_t slide = static_cast<size_t>(b->requests.front().slide);
    if (b->count() > 0) {
      at::Tensor x = inputs.inputs(*b);
      if (x.size(-1) != encoder.inputSize())
        x = at::upsample_bilinear2d(x, {encoder.inputSize(), encoder.inputSize()}, false);
      at::Tensor f;
      {
        AutocastScope autocast(device.type(), amp);
        f = encoder.encode(x);
      }
      f = f.to(at::kCPU, at::kFloat);
      for (size_t i = 0; i < b->count(); ++i) rows[slide][b->ids[i]] = f[static_cast<int64_t>(i)];
      done += static_cast<int64_t>(b->count());
    }
    if (--batchesLeft[slide] > 0) continue;
    finishSlide(slide);
    ++slidesDone, ++written;
    const auto now = std::chrono::steady_clock::now();
    if (lead && (std::chrono::duration<double>(now - lastPrint).count() > 2 || slidesDone == static_cast<int64_t>(mine.size()))) {
      lastPrint = now;
      const double secs = std::chrono::duration<double>(now - t0).count();
      const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
      const double eta = rate > 0 ? static_cast<double>(myPatches - done) / rate : 0;
      std::printf("features: rank 0 %lld/%zu slides, %lld/%lld patches, %.0f patches/s, ETA %s\n",
                  static_cast<long long>(slidesDone), mine.size(), static_cast<long long>(done),
                  static_cast<long long>(myPatches), rate, Progress::formatDuration(eta).c_str());
      std::fflush(stdout);
    }
  }
  const wsi::StreamStats stats = stream.stats();
  if (stats.skipped > 0)
    std::printf("features: rank %d skipped %lld unreadable patches (on_bad_slide=skip)%s%s\n", rank,
                static_cast<long long>(stats.skipped), stats.skippedReasons.empty() ? "" : ": ",
                stats.skippedReasons.empty() ? "" : stats.skippedReasons.front().c_str());

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  at::Tensor totals = at::tensor({static_cast<double>(written), static_cast<double>(upToDate),
                                  static_cast<double>(done)}, at::kDouble);
  at::Tensor slowest = at::tensor({secs}, at::kDouble);
  planes.host->allReduce(totals);
  planes.host->allReduce(slowest, dist::ReduceOp::Max);
  ExtractionSummary out;
  out.written = static_cast<int64_t>(totals[0].item<double>());
  out.upToDate = static_cast<int64_t>(totals[1].item<double>());
  out.patches = static_cast<int64_t>(totals[2].item<double>());
  out.seconds = slowest.item<double>();
  out.patchesPerSecond = out.seconds > 0 ? static_cast<double>(out.patches) / out.seconds : 0;
  return out;
}

}  // namespace slidetrain::mil
