#pragma once
// The wsi layer's portable random stream (splitmix64). Unlike std:: distributions it gives the
// same sequence on every platform and library, which seeded augmentation and synthetic slides
// rely on. (distributed/Sampler has its own copy: the two layers never include each other.)
#include <cstdint>

namespace slidetrain::wsi {

struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [lo, hi) from the top 53 bits.
  double uniform(double lo = 0, double hi = 1) { return lo + (hi - lo) * ((next() >> 11) * 0x1.0p-53); }
  /// A non-negative int seed for libvips' generators.
  int seed() { return static_cast<int>(next() & 0x7fffffff); }
};

}  // namespace slidetrain::wsi
