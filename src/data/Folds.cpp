#include "src/data/Folds.h"

#include <algorithm>
#include <map>

#include "distributed/Sampler.h"
#include "src/config/Errors.h"

namespace slidetrain {

std::vector<int> assignFolds(const wsi::Cohort& cohort, int folds, uint64_t seed, const std::string& key) {
  if (folds < 2)
    throw ConfigError(key + ": " + std::to_string(folds) + " fold(s); cross-validation needs at least 2");
  std::map<std::string, std::vector<size_t>> groups;  // ordered: deterministic
  for (size_t i = 0; i < cohort.slides.size(); ++i) {
    const auto& e = cohort.slides[i];
    if (e.split == "test") continue;
    groups[e.patientId.empty() ? "slide:" + e.slideId : "patient:" + e.patientId].push_back(i);
  }
  if (static_cast<int>(groups.size()) < folds)
    throw ConfigError(key + ": " + std::to_string(folds) + " folds but only " +
                      std::to_string(groups.size()) + " patients/slides outside the test split");
  struct Group {
    int label;
    std::vector<size_t> slides;
  };
  std::vector<Group> list;
  for (auto& [name, idx] : groups) list.push_back({cohort.slides[idx[0]].labelIndex, idx});
  const std::vector<int64_t> perm = dist::globalOrder(static_cast<int64_t>(list.size()), seed, 0xCF);
  std::vector<Group> shuffled;
  for (int64_t p : perm) shuffled.push_back(list[static_cast<size_t>(p)]);
  // Stratify: deal the shuffled groups label by label, continuing round-robin over the folds.
  std::stable_sort(shuffled.begin(), shuffled.end(), [](const Group& a, const Group& b) { return a.label < b.label; });
  std::vector<int> fold(cohort.slides.size(), -1);
  for (size_t g = 0; g < shuffled.size(); ++g)
    for (size_t s : shuffled[g].slides) fold[s] = static_cast<int>(g % static_cast<size_t>(folds));
  return fold;
}

}  // namespace slidetrain
