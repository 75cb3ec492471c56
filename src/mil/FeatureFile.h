#pragma once
// One slide's patch features on disk, in the HDF5 layout CLAM and TRIDENT users read:
//   features  [N, D] float32 (or float16)     coords  [N, 2] int64, level-0 (x, y) of each patch
// with attributes on the file (slide_id, encoder, encoder_weights, fingerprint, patch_size,
// patch_size_level0, patch_level, mpp, input_size, slidetrain_version) and CLAM's on `coords`
// (patch_size, patch_level, patch_size_level0, name). Written to <path>.tmp and renamed when
// complete, so a file under its final name is always whole.
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/Tensor.h>

namespace slidetrain::mil {

struct FeatureFileInfo {
  std::string slideId;
  std::string encoder, encoderWeights;
  std::string fingerprint;     ///< what made the features (featuresFingerprint); a rerun compares it
  int64_t patchSize = 0;       ///< patch side in pixels as read/resampled (tiling.patch_size)
  int64_t patchSizeLevel0 = 0; ///< patch side in level-0 pixels
  int64_t patchLevel = 0;      ///< pyramid level read
  double mpp = 0;              ///< microns per patch pixel (0: the slide records none)
  int64_t inputSize = 0;       ///< side the encoder was fed
};

/// features: float [N, D] on the CPU; coords: N (x, y) pairs. Durable (fsync + rename).
void writeFeatureFile(const std::string& path, const at::Tensor& features,
                      const std::vector<int64_t>& coords, const FeatureFileInfo& info, bool float16);

/// The fingerprint recorded in `path`; "" when the file is missing, unreadable or has none.
std::string storedFingerprint(const std::string& path);

struct Bag {
  at::Tensor features;          ///< [N, D] float32, CPU
  std::vector<int64_t> coords;  ///< N (x, y) pairs, level 0
  FeatureFileInfo info;
  int64_t size() const { return features.defined() ? features.size(0) : 0; }
};

/// Reads and checks a feature file: both datasets present, 2-D, the same N, coords [N, 2].
/// Throws wsi::DataError naming the file (missing, truncated, not HDF5, wrong layout). A bag with
/// N = 0 is returned as it is (the caller decides: an empty bag is an error for `mil`).
Bag readFeatureFile(const std::string& path);

}  // namespace slidetrain::mil
