#pragma once
// `slidetrain features`: every tissue patch of a split embedded once by a frozen encoder, one
// feature file per slide (src/mil/FeatureFile.h). Slides are sharded over ranks by patch count;
// each rank streams its slides' patches (the patch stream of training, with its readers and
// bad-patch policy), encodes them on its device (autocast with train.amp) and writes each slide's
// file as soon as its last batch is encoded. A rerun skips files whose fingerprint matches and
// rebuilds the others (resume after a crash, or new settings).
#include <cstdint>
#include <string>
#include <vector>

#include "distributed/Planes.h"
#include "src/config/Settings.h"
#include "src/data/SplitData.h"
#include "src/mil/Encoder.h"

namespace slidetrain::mil {

/// Rank of each slide: largest slides first, each to the rank with the fewest patches so far
/// (ties: the lower rank). Deterministic; every rank computes the same plan.
std::vector<int> shardByPatchCount(const std::vector<int64_t>& patchesPerSlide, int world);

/// What made slide `s`'s features: the encoder and its weights, input size and normalisation,
/// stain normalisation, dtype, the slide file and every patch's geometry (`patches`: the slide's
/// requests). A hex digest.
std::string featuresFingerprint(const SplitData& data, size_t slide,
                                const std::vector<wsi::PatchRequest>& patches, const Encoder& encoder,
                                const FeaturesSettings& features, const std::vector<double>& mean,
                                const std::vector<double>& std, const wsi::AugmentOptions& augment);

struct ExtractionSummary {
  int64_t written = 0, upToDate = 0;  ///< slides (all ranks)
  int64_t patches = 0;                ///< patches encoded (all ranks)
  double seconds = 0;                 ///< wall time of the slowest rank
  double patchesPerSecond = 0;        ///< patches / seconds
};

/// Collective (host plane: one all-reduce at the end). Prints progress on rank 0.
ExtractionSummary extractFeatures(const Settings& settings, const SplitData& data, Encoder& encoder,
                                  const dist::Planes& planes);

/// <out_dir>/<slide_id>.h5
std::string featureFilePath(const FeaturesSettings& features, const std::string& slideId);

}  // namespace slidetrain::mil
