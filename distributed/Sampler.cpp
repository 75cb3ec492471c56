// World-size-invariant sample order. Everything here is a pure function of its arguments so that
// every rank computes the same permutation without communicating.
#include "distributed/Sampler.h"

#include <algorithm>
#include <numeric>
#include <string>
#include <utility>

#include "distributed/Comm.h"

namespace slidetrain::dist {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

/// splitmix64's output function: a bijective 64-bit mixer.
uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// Uniform integer in [0, bound) without modulo bias (Lemire's multiply-and-reject).
uint64_t bounded(uint64_t& state, uint64_t bound) {
  __uint128_t m = static_cast<__uint128_t>(splitmix64(state)) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      m = static_cast<__uint128_t>(splitmix64(state)) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

}  // namespace

uint64_t splitmix64(uint64_t& state) {
  state += kGolden;
  return mix64(state);
}

uint64_t mixSeed(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  // Absorb one word at a time through the mixer; distinct constants per position keep
  // mixSeed(a, b) != mixSeed(b, a).
  uint64_t h = mix64(a + kGolden);
  h = mix64(h ^ (b + 0xD1B54A32D192ED03ULL));
  h = mix64(h ^ (c + 0x8CB92BA72F3D8DD7ULL));
  h = mix64(h ^ (d + 0xABC98388FB8FAC03ULL));
  return h;
}

std::vector<int64_t> globalOrder(int64_t n, uint64_t seed, int64_t epoch) {
  if (n < 0) throw DistError("globalOrder: negative sample count " + std::to_string(n));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  uint64_t state = mixSeed(seed, static_cast<uint64_t>(epoch), 0x5A4D504C45ULL /* "SAMPLE" */);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(bounded(state, static_cast<uint64_t>(i + 1)));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

int64_t numGlobalBatches(int64_t n, int64_t globalBatch, bool dropLast) {
  if (globalBatch <= 0)
    throw DistError("global batch size must be positive, got " + std::to_string(globalBatch));
  if (n <= 0) return 0;
  return dropLast ? n / globalBatch : (n + globalBatch - 1) / globalBatch;
}

namespace {

/// [begin, end) of rank's slice of global batch k (positions in the order); validates as
/// rankSliceOfBatch documents.
std::pair<int64_t, int64_t> sliceSpan(int64_t n, int64_t globalBatch, int64_t k, int rank, int world) {
  if (world <= 0 || rank < 0 || rank >= world)
    throw DistError("rankSliceOfBatch: rank " + std::to_string(rank) + " of world " +
                    std::to_string(world) + " is invalid");
  if (globalBatch <= 0 || globalBatch % world != 0)
    throw DistError("global batch size " + std::to_string(globalBatch) +
                    " is not divisible by the world size " + std::to_string(world) +
                    "; choose a multiple so every rank gets the same share");
  const int64_t begin = k * globalBatch;
  if (k < 0 || begin >= n)
    throw DistError("rankSliceOfBatch: global batch " + std::to_string(k) + " is past the end (" +
                    std::to_string(numGlobalBatches(n, globalBatch, false)) + " batches)");
  const int64_t size = std::min(globalBatch, n - begin);
  // Full batch: equal slices. Trailing partial batch: sizes differ by at most one, lower ranks
  // take the extra sample; slices stay contiguous, so their concatenation in rank order is
  // the global batch for any world size.
  const int64_t base = size / world, extra = size % world;
  const int64_t offset = rank * base + std::min<int64_t>(rank, extra);
  const int64_t count = base + (rank < extra ? 1 : 0);
  return {begin + offset, begin + offset + count};
}

}  // namespace

std::vector<int64_t> rankSliceOfBatch(const std::vector<int64_t>& order, int64_t globalBatch,
                                      int64_t k, int rank, int world) {
  const auto [b, e] = sliceSpan(static_cast<int64_t>(order.size()), globalBatch, k, rank, world);
  return std::vector<int64_t>(order.begin() + b, order.begin() + e);
}

std::vector<int64_t> rankSliceSizes(int64_t n, int64_t globalBatch, int64_t k, int world) {
  std::vector<int64_t> sizes;
  for (int r = 0; r < world; ++r) {
    const auto [b, e] = sliceSpan(n, globalBatch, k, r, world);
    sizes.push_back(e - b);
  }
  return sizes;
}

}  // namespace slidetrain::dist
