#include "src/train/RunFingerprint.h"

#include <algorithm>
#include <set>
#include <sstream>

namespace slidetrain {
namespace {

/// Settings that change what is learned. Speed, length and logging keys are left out.
bool definesExperiment(const std::string& key) {
  static const std::set<std::string> excluded = {
      "tiling.threads", "tiling.export_csv", "data.workers", "data.prefetch_batches",
      "data.slide_cache", "data.direct_reads", "data.tile_cache_mb", "data.group_window_batches"};
  static const std::set<std::string> trainKeys = {
      "train.batch_size", "train.sync_batchnorm", "train.loss", "train.label_smoothing",
      "train.class_weights", "train.accumulation_steps", "train.grad_clip_norm", "train.amp"};
  if (excluded.count(key)) return false;
  if (key == "seed" || trainKeys.count(key)) return true;
  for (const char* p : {"tiling.", "tissue.", "data.", "augment.", "model.", "optimizer.", "schedule."})
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

std::string slideList(const SplitData& s, const std::vector<std::string>& classNames) {
  std::vector<std::string> v;
  for (size_t i = 0; i < s.slideIds.size(); ++i) {
    const int l = s.slideLabels[i];
    v.push_back(s.slideIds[i] + "=" + (l >= 0 && l < int(classNames.size()) ? classNames[l] : std::to_string(l)));
  }
  std::sort(v.begin(), v.end());
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : " ") + x;
  return out;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

RunFingerprint runFingerprint(const Settings& settings, const SplitData& train, const SplitData* val,
                              const std::vector<std::string>& classNames) {
  RunFingerprint f;
  for (const auto& [key, value] : settings.values())
    if (definesExperiment(key)) f[key] = value;
  f["slides of train"] = slideList(train, classNames);
  f["slides of val"] = val ? slideList(*val, classNames) : "";
  return f;
}

std::string serializeFingerprint(const RunFingerprint& f) {
  std::string out;
  for (const auto& [k, v] : f) out += k + "\t" + v + "\n";
  return out;
}

RunFingerprint parseFingerprint(const std::string& text) {
  RunFingerprint f;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    if (tab != std::string::npos) f[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return f;
}

std::vector<std::string> fingerprintDifferences(const RunFingerprint& saved, const RunFingerprint& now) {
  std::vector<std::string> out;
  std::set<std::string> keys;
  for (const auto& kv : saved) keys.insert(kv.first);
  for (const auto& kv : now) keys.insert(kv.first);
  for (const auto& k : keys) {
    const auto a = saved.find(k), b = now.find(k);
    const std::string va = a == saved.end() ? "(absent)" : a->second;
    const std::string vb = b == now.end() ? "(absent)" : b->second;
    if (va == vb) continue;
    if (k.rfind("slides of ", 0) == 0) {
      const auto wa = words(va), wb = words(vb);
      std::vector<std::string> gone, added;
      std::set_difference(wa.begin(), wa.end(), wb.begin(), wb.end(), std::back_inserter(gone));
      std::set_difference(wb.begin(), wb.end(), wa.begin(), wa.end(), std::back_inserter(added));
      std::string line = k + ": " + std::to_string(wa.size()) + " slides -> " + std::to_string(wb.size());
      if (!gone.empty()) line += "; no longer: " + gone.front() + (gone.size() > 1 ? " and " + std::to_string(gone.size() - 1) + " more" : "");
      if (!added.empty()) line += "; new: " + added.front() + (added.size() > 1 ? " and " + std::to_string(added.size() - 1) + " more" : "");
      out.push_back(line);
    } else {
      out.push_back(k + ": " + va + " -> " + vb);
    }
  }
  return out;
}

}  // namespace slidetrain
