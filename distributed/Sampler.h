#pragma once
// World-size-invariant order: one permutation of a split's samples per (seed, epoch); global batch
// k is order[k*G, (k+1)*G) for global batch size G, and rank r of W takes the r-th of W equal
// contiguous slices of it. Depends only on (seed, epoch, rank, world).
#include <cstdint>
#include <vector>

namespace slidetrain::dist {

/// splitmix64 step: the project's portable PRNG (std::shuffle differs between libraries).
uint64_t splitmix64(uint64_t& state);
/// Deterministic hash of several 64-bit values (seeds per sample).
uint64_t mixSeed(uint64_t a, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0);

/// Permutation of [0, n) for (seed, epoch) (Fisher-Yates over splitmix64).
std::vector<int64_t> globalOrder(int64_t n, uint64_t seed, int64_t epoch);

/// Number of full global batches (the last partial batch is dropped when dropLast).
int64_t numGlobalBatches(int64_t n, int64_t globalBatch, bool dropLast);

/// The sample indices rank `rank` of `world` processes in global batch `k`: the rank-th of
/// `world` equal contiguous slices. For a trailing partial batch (dropLast false) slice sizes
/// differ by at most one, lower ranks first (a rank may get zero samples; it must still run
/// forward/backward so the collectives match). Throws DistError when globalBatch is not
/// divisible by world or k is past the end.
std::vector<int64_t> rankSliceOfBatch(const std::vector<int64_t>& order, int64_t globalBatch,
                                      int64_t k, int rank, int world);

/// The sizes of every rank's slice of global batch `k` of an order of `n` samples, in rank
/// order (rankSliceOfBatch(...).size() for each rank, without the indices). Same errors.
std::vector<int64_t> rankSliceSizes(int64_t n, int64_t globalBatch, int64_t k, int world);

}  // namespace slidetrain::dist
