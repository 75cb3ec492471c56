#pragma once
// The training samples of one epoch, before the permutation: a pure function of
// (seed, epoch, samples), so every rank computes the same list and the order stays world-size
// invariant (the permutation dist::globalOrder is applied on top of it).
//
//  1. Per-slide cap (data.max_patches_per_slide > 0): a slide with more patches keeps a seeded
//     random subset of `cap` of them, drawn anew each epoch.
//  2. Class balance (data.class_balanced): the epoch keeps its size (after the cap), and every
//     class present gets an equal share (the remainder goes one each to the lowest classes).
//     A class draws its share by walking seeded shuffles of its patches, reshuffled on each
//     wrap, so small classes repeat (oversampling) and large ones are subsampled without repeats.
#include <cstdint>
#include <vector>

#include "wsi/PatchStream.h"
#include "src/config/Settings.h"

namespace slidetrain {

struct SamplingOptions {
  int64_t maxPatchesPerSlide = 0;  ///< 0 = all
  bool classBalanced = false;
};

/// data.max_patches_per_slide and data.class_balanced.
SamplingOptions samplingOptions(const DataSettings& data);

/// Indices into `samples` (with repeats when class-balanced), sorted ascending. Same result on
/// every rank and for any world size.
std::vector<int64_t> epochSampleList(const std::vector<wsi::PatchRequest>& samples,
                                     const SamplingOptions& options, uint64_t seed, int64_t epoch);

/// The epoch's global order: epochSampleList permuted by dist::globalOrder(size, seed, epoch).
std::vector<int64_t> epochOrder(const std::vector<wsi::PatchRequest>& samples,
                                const SamplingOptions& options, uint64_t seed, int64_t epoch);

}  // namespace slidetrain
