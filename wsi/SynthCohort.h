#pragma once
// Synthetic labelled cohort generator (libvips): pyramidal tiled JPEG TIFFs that OpenSlide opens
// as generic-tiff, H&E-like tissue blobs; "tumor" slides hold tumour regions of a distinct
// morphology over part of the tissue. Deterministic for a seed; streams tiles, never holds a
// whole slide in memory.
#include <cstdint>
#include <string>

namespace slidetrain::wsi {

struct SynthOptions {
  int numSlides = 16;
  int width = 4096;      ///< level-0 width in pixels
  int height = 3072;     ///< level-0 height
  double mpp = 0.5;      ///< microns per pixel recorded in the file
  double tumorFraction = 0.5;   ///< share of slides labelled tumor
  double testFraction = 0.25;   ///< share of slides in the test split
  double valFraction = 0.0;     ///< share of slides in the val split (rest: train)
  uint64_t seed = 1;
  int tileSize = 256;
  int jpegQuality = 85;
  void validate() const;
};

/// Writes slides/*.tiff, annotations/*.geojson and cohort.csv under `outDir`.
void synthesizeCohort(const std::string& outDir, const SynthOptions& options);

}  // namespace slidetrain::wsi
