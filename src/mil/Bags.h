#pragma once
// The bags `slidetrain mil` learns from: one per slide, or one per patient (mil.label_level),
// read from the feature files of `slidetrain features`. Every file is checked when the bags are
// collected, so that a missing or truncated file, an empty bag or a D that differs from the
// others is reported before training starts, naming the file (on_bad_slide=skip: reported and
// left out).
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "src/config/Settings.h"
#include "src/mil/FeatureFile.h"
#include "wsi/Cohort.h"

namespace slidetrain::mil {

struct BagSpec {
  std::string id;                   ///< slide id, or patient id for a patient bag
  std::string patient;              ///< patient id (slide id when the cohort has none)
  int label = -1;                   ///< class index; -1 unlabelled
  std::vector<size_t> slides;       ///< cohort indices of the slides it holds
  std::vector<std::string> files;   ///< their feature files
  std::vector<int64_t> rowsPerSlide;
  int64_t patches = 0;
};

struct BagSet {
  std::string split;
  std::vector<BagSpec> bags;
  int64_t dim = 0;                  ///< D, the same for every bag
  std::vector<std::string> skipped; ///< "file: reason" of slides left out (on_bad_slide=skip)
  /// Features of each bag [N, D] kept in memory when the split is small enough (cacheBags);
  /// otherwise read again from the files on each use.
  std::vector<at::Tensor> cache;
};

/// The bags of `split` of `cohort`. `expectDim` > 0: the D every bag must have (the training
/// bags'); 0: taken from the first file. Throws wsi::DataError naming the file on a bad one unless
/// `skipBad`. Patient bags (mil.label_level=patient, mil.patient_pooling=bag) hold all the
/// patient's slides of the split; their slides must share one label (DataError otherwise).
BagSet collectBags(const wsi::Cohort& cohort, const std::string& split, const MilSettings& mil,
                   const FeaturesSettings& features, bool skipBad, int64_t expectDim = 0);

/// The bag's features, [N, D] float32 on the CPU (its slides' rows in order).
at::Tensor bagFeatures(const BagSet& set, size_t bag);

/// The coordinates of each slide of a bag (level-0 x, y pairs) and the file's geometry.
std::vector<Bag> bagSlides(const BagSpec& bag);

}  // namespace slidetrain::mil
