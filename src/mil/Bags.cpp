#include "src/mil/Bags.h"

#include <map>

#include <ATen/ATen.h>

#include "src/mil/FeatureExtraction.h"
#include "wsi/Errors.h"

namespace slidetrain::mil {
namespace {

/// Bags are kept in memory below this many bytes of features per split.
constexpr int64_t kCacheBytes = int64_t(2) << 30;

}  // namespace

BagSet collectBags(const wsi::Cohort& cohort, const std::string& split, const MilSettings& mil,
                   const FeaturesSettings& features, bool skipBad, int64_t expectDim) {
  BagSet set;
  set.split = split;
  set.dim = expectDim;
  std::vector<at::Tensor> loaded;
  std::map<std::string, size_t> bagOfPatient;
  int64_t bytes = 0;
  for (size_t i : cohort.indicesOfSplit(split)) {
    const wsi::CohortEntry& e = cohort.slides[i];
    const std::string file = featureFilePath(features, e.slideId);
    Bag bag;
    try {
      bag = readFeatureFile(file);
      if (bag.size() == 0)
        throw wsi::DataError(file + ": empty bag (no patch of slide " + e.slideId +
                             " has features: no tissue at this threshold?)");
      if (set.dim > 0 && bag.features.size(1) != set.dim)
        throw wsi::DataError(file + ": features have D = " + std::to_string(bag.features.size(1)) +
                             " but the other bags have D = " + std::to_string(set.dim) +
                             " (made by another encoder? rerun `slidetrain features`)");
    } catch (const wsi::DataError& err) {
      if (!skipBad) throw;
      set.skipped.push_back(err.what());
      continue;
    }
    if (set.dim == 0) set.dim = bag.features.size(1);
    const std::string patient = e.patientId.empty() ? e.slideId : e.patientId;
    const bool join = mil.patientLevel && mil.patientBag;
    auto found = bagOfPatient.find(patient);
    if (join && found != bagOfPatient.end()) {
      BagSpec& b = set.bags[found->second];
      if (b.label != e.labelIndex)
        throw wsi::DataError(cohort.slides[b.slides.front()].slideId + " and " + e.slideId +
                             " belong to patient " + patient +
                             " but have different labels (mil.label_level=patient)");
      b.slides.push_back(i);
      b.files.push_back(file);
      b.rowsPerSlide.push_back(bag.size());
      b.patches += bag.size();
      loaded[found->second] = at::cat({loaded[found->second], bag.features});
    } else {
      BagSpec b;
      b.id = join ? patient : e.slideId;
      b.patient = patient;
      b.label = e.labelIndex;
      b.slides = {i};
      b.files = {file};
      b.rowsPerSlide = {bag.size()};
      b.patches = bag.size();
      if (join) bagOfPatient[patient] = set.bags.size();
      set.bags.push_back(std::move(b));
      loaded.push_back(bag.features);
    }
    bytes += bag.features.numel() * 4;
  }
  if (bytes <= kCacheBytes) set.cache = std::move(loaded);
  return set;
}

at::Tensor bagFeatures(const BagSet& set, size_t bag) {
  if (bag < set.cache.size()) return set.cache[bag];
  std::vector<at::Tensor> parts;
  for (const auto& f : set.bags[bag].files) parts.push_back(readFeatureFile(f).features);
  return parts.size() == 1 ? parts.front() : at::cat(parts);
}

std::vector<Bag> bagSlides(const BagSpec& bag) {
  std::vector<Bag> out;
  for (const auto& f : bag.files) out.push_back(readFeatureFile(f));
  return out;
}

}  // namespace slidetrain::mil
