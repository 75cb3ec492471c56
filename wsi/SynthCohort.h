#pragma once
// Synthetic labelled cohort generator (libvips): pyramidal tiled JPEG TIFFs that OpenSlide opens
// as generic-tiff, H&E-like tissue blobs; "tumor" slides hold tumour regions of a distinct
// morphology over part of the tissue. Deterministic for a seed; streams tiles, never holds a
// whole slide in memory.
#include <cstdint>
#include <string>
#include <vector>

#include "wsi/Annotations.h"

namespace slidetrain::wsi {

struct SynthOptions {
  int numSlides = 16;
  int width = 4096;      ///< level-0 width in pixels
  int height = 3072;     ///< level-0 height
  double mpp = 0.5;      ///< microns per pixel recorded in the file
  double tumorFraction = 0.5;   ///< share of slides labelled tumor
  double testFraction = 0.25;   ///< share of slides in the test split
  double valFraction = 0.0;     ///< share of slides in the val split (rest: train)
  /// 0: each tumour slide gets 1-3 large annotated tumour regions (about 20-35 % of its tissue).
  /// > 0, weak-label mode: a few small scattered regions covering about this share of the
  /// slide's tissue, and no annotation files, so tiling labels every patch with its slide's label.
  double tumorTissueShare = 0.0;
  /// 0: every slide has the same stain, nuclei density and tissue types. > 0 (up to 1): each slide
  /// draws its own stain (per-channel gain and offset), normal nuclei size and density, and 0-2
  /// benign look-alike regions (dense small dark nuclei, like lymphocyte aggregates) covering up to
  /// ~15 % x variation of its tissue, on tumour and normal slides alike; in weak-label mode each
  /// tumour slide's share is tumorTissueShare x U(1 - variation / 2, 1 + variation / 2).
  double slideVariation = 0.0;
  uint64_t seed = 1;
  int tileSize = 256;
  int jpegQuality = 85;
  void validate() const;
};

/// One slide of a synthetic cohort, as written.
struct SynthSlide {
  std::string slideId;
  std::string label;  ///< "tumor" or "normal"
  std::string split;  ///< "train", "val" or "test"
  Annotations tumour; ///< its tumour regions (level-0 px); empty for a normal slide
  /// Share of its tissue inside the tumour regions, on the generator's low-resolution tissue field.
  double tumourShareOfTissue = 0;
  /// Benign look-alike regions drawn on it (synth.slide_variation > 0; never annotated).
  int lookAlikeRegions = 0;
};

/// Writes slides/*.tiff, annotations/*.geojson (not in weak-label mode) and cohort.csv under
/// `outDir`; returns the slides in cohort order.
std::vector<SynthSlide> synthesizeCohort(const std::string& outDir, const SynthOptions& options);

}  // namespace slidetrain::wsi
