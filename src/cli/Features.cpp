#include "src/cli/Features.h"

#include <cstdio>

#include "distributed/MpiComm.h"
#include "src/data/ClassOrder.h"
#include "src/data/SplitData.h"
#include "src/mil/Encoder.h"
#include "src/mil/FeatureExtraction.h"
#include "src/runtime/Runtime.h"

namespace slidetrain {

int runFeatures(const Settings& cfg) {
  const dist::Planes planes = startRuntime(cfg.train, cfg.data);
  const bool lead = planes.rank() == 0;
  const wsi::Cohort cohort = readCohort(cfg.run, cfg.data, /*forPrediction=*/true);  // labels optional
  const std::string& split = cfg.features.split;
  if (cohort.indicesOfSplit(split).empty())
    throw ConfigError("features.split: no slide of " + cfg.run.cohort + " is in split '" + split + "'");
  const SplitData data = prepareSplit(cfg.tiling, cohort, split, *planes.host);
  const int inputSize = cfg.features.inputSize > 0 ? cfg.features.inputSize : cfg.tiling.index.size;
  auto encoder = mil::makeEncoder(cfg.features, cfg.model, inputSize, planes.modelDevice, lead);
  if (lead) {
    std::printf("features: encoder %s (%s), D = %lld, input %dx%d, %zu slides, %zu patches, %d rank%s -> %s\n",
                encoder->name().c_str(), encoder->weightsId().c_str(),
                static_cast<long long>(encoder->dim()), inputSize, inputSize, data.paths.size(),
                data.samples.size(), planes.host->size(), planes.host->size() == 1 ? "" : "s",
                cfg.features.outDir.c_str());
    if (cfg.features.encoder == "model" && cfg.model.pretrained.empty())
      std::printf("features: model.pretrained is empty: the encoder has random weights (fine for "
                  "testing the plumbing; set model.pretrained or features.encoder for real features)\n");
    for (const auto& s : data.skipped) std::printf("features: skipped slide %s\n", s.c_str());
    std::fflush(stdout);
  }
  const mil::ExtractionSummary sum = mil::extractFeatures(cfg, data, *encoder, planes);
  if (lead)
    std::printf("features: wrote %lld slide file(s), %lld already up to date, %lld patches in %.1f s "
                "(%.0f patches/s over %d rank%s); %zu slide(s) skipped\n",
                static_cast<long long>(sum.written), static_cast<long long>(sum.upToDate),
                static_cast<long long>(sum.patches), sum.seconds, sum.patchesPerSecond,
                planes.host->size(), planes.host->size() == 1 ? "" : "s", data.skipped.size());
  return 0;
}

}  // namespace slidetrain
