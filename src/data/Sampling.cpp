#include "src/data/Sampling.h"

#include <algorithm>
#include <map>

#include "distributed/Sampler.h"

namespace slidetrain {

SamplingOptions samplingOptions(const DataSettings& data) {
  SamplingOptions o;
  o.maxPatchesPerSlide = data.maxPatchesPerSlide;
  o.classBalanced = data.classBalanced;
  return o;
}
namespace {

/// Seeded shuffle of `v` (Fisher-Yates over the project's portable PRNG).
void shuffle(std::vector<int64_t>& v, uint64_t seed) {
  const std::vector<int64_t> perm = dist::globalOrder(static_cast<int64_t>(v.size()), seed, 0);
  std::vector<int64_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = v[static_cast<size_t>(perm[i])];
  v.swap(out);
}

constexpr uint64_t kCapTag = 0xCA9;      // stream tags keep the draws independent
constexpr uint64_t kBalanceTag = 0xBA1;

}  // namespace

std::vector<int64_t> epochSampleList(const std::vector<wsi::PatchRequest>& samples,
                                     const SamplingOptions& o, uint64_t seed, int64_t epoch) {
  const auto ep = static_cast<uint64_t>(epoch);
  std::vector<int64_t> list;
  if (o.maxPatchesPerSlide > 0) {
    std::map<int32_t, std::vector<int64_t>> bySlide;  // ordered: deterministic iteration
    for (size_t i = 0; i < samples.size(); ++i)
      bySlide[samples[i].slide].push_back(static_cast<int64_t>(i));
    for (auto& [slide, idx] : bySlide) {
      if (static_cast<int64_t>(idx.size()) > o.maxPatchesPerSlide) {
        shuffle(idx, dist::mixSeed(seed, ep, kCapTag, static_cast<uint64_t>(slide)));
        idx.resize(static_cast<size_t>(o.maxPatchesPerSlide));
      }
      list.insert(list.end(), idx.begin(), idx.end());
    }
    std::sort(list.begin(), list.end());
  } else {
    list.resize(samples.size());
    for (size_t i = 0; i < list.size(); ++i) list[i] = static_cast<int64_t>(i);
  }
  if (!o.classBalanced || list.empty()) return list;

  std::map<int32_t, std::vector<int64_t>> byClass;
  for (int64_t i : list) byClass[samples[static_cast<size_t>(i)].label].push_back(i);
  const auto k = static_cast<int64_t>(byClass.size());
  const auto n = static_cast<int64_t>(list.size());
  std::vector<int64_t> out;
  out.reserve(list.size());
  int64_t c = 0;
  for (auto& [label, idx] : byClass) {
    const int64_t quota = n / k + (c < n % k ? 1 : 0);
    std::vector<int64_t> pass;
    for (int64_t taken = 0, wrap = 0; taken < quota; ++wrap) {
      pass = idx;
      shuffle(pass, dist::mixSeed(seed, ep, kBalanceTag, dist::mixSeed(static_cast<uint64_t>(label),
                                                                       static_cast<uint64_t>(wrap))));
      const int64_t take = std::min<int64_t>(quota - taken, static_cast<int64_t>(pass.size()));
      out.insert(out.end(), pass.begin(), pass.begin() + take);
      taken += take;
    }
    ++c;
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<int64_t> epochOrder(const std::vector<wsi::PatchRequest>& samples,
                                const SamplingOptions& o, uint64_t seed, int64_t epoch) {
  const std::vector<int64_t> list = epochSampleList(samples, o, seed, epoch);
  // Without cap or balance the list is the identity and this is exactly dist::globalOrder.
  const std::vector<int64_t> perm = dist::globalOrder(static_cast<int64_t>(list.size()), seed, epoch);
  std::vector<int64_t> order(list.size());
  for (size_t i = 0; i < list.size(); ++i) order[i] = list[static_cast<size_t>(perm[i])];
  return order;
}

}  // namespace slidetrain
